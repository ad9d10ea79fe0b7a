//! Unit tests of the transformation.
fn assert_send_sync<T: Send + Sync>() {}
#[test]
fn send_sync() {
    assert_send_sync::<cel::Context<'static, 'static>>();
    assert_send_sync::<super::CompiledProduct>();
    assert_send_sync::<super::RecordError>();
}
