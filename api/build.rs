//! Rebuilds the crate when the web console's files change, so a release build embeds the
//! `web/dist` of its time (rust-embed does not tell cargo about files added later).

fn main() {
    if std::path::Path::new("../web/dist").exists() {
        println!("cargo::rerun-if-changed=../web/dist");
    } else {
        // Its creation changes `web/`: then the build embeds it.
        println!("cargo::rerun-if-changed=../web");
    }
}
