//! Loading the configuration from files, `services.env` and the environment.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-config-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn controller_settings_are_read_and_checked() {
    let dir = temp_dir("controller");
    let data = (ENV_DATA_DIR, dir.to_str().unwrap());
    let config = Config::from_sources(
        None,
        &env(&[
            data,
            (ENV_CONTROLLER_RESYNC, "500ms"),
            (ENV_CONTROLLER_MAX_BACKOFF, "2m"),
            (ENV_KAFKA_REPLICATION, "3"),
        ]),
    )
    .unwrap();
    assert_eq!(
        config.controller_resync,
        Some(std::time::Duration::from_millis(500))
    );
    assert_eq!(
        config.controller_max_backoff,
        Some(std::time::Duration::from_secs(120))
    );
    assert_eq!(config.cluster_check_interval, None);
    assert_eq!(config.kafka_replication, 3);
    for (key, value) in [
        (ENV_CONTROLLER_RESYNC, "soon"),
        (ENV_CONTROLLER_RESYNC, "0s"),
        (ENV_KAFKA_REPLICATION, "0"),
        (ENV_KAFKA_REPLICATION, "three"),
    ] {
        let error = Config::from_sources(None, &env(&[data, (key, value)])).unwrap_err();
        assert!(error.to_string().starts_with(key), "{error}");
    }
}

#[test]
fn defaults_listen_on_loopback_with_sqlite_in_the_data_dir() {
    let dir = temp_dir("defaults");
    let config =
        Config::from_sources(None, &env(&[(ENV_DATA_DIR, dir.to_str().unwrap())])).unwrap();
    assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        config.database_url,
        format!("sqlite://{}/sluice.db?mode=rwc", dir.display())
    );
    assert_eq!(config.kafka_bootstrap, None);
    assert!(config.admin_token.is_none());
}

#[test]
fn environment_beats_file_beats_services_env() {
    let dir = temp_dir("precedence");
    std::fs::write(
        dir.join("services.env"),
        "SLUICE_KAFKA_BOOTSTRAP=127.0.0.1:1111\nSLUICE_LISTEN=127.0.0.1:1\nSLUICE_TEST_REDIS_URL=redis://x\n",
    )
    .unwrap();
    let file = dir.join("sluice.yaml");
    std::fs::write(&file, "listen: 127.0.0.1:2222\nsecretKey: from-file\n").unwrap();

    let config = Config::from_sources(
        Some(&file),
        &env(&[
            (ENV_DATA_DIR, dir.to_str().unwrap()),
            (ENV_SECRET_KEY, "from-env"),
            (ENV_ADMIN_TOKEN, ""),
        ]),
    )
    .unwrap();
    assert_eq!(config.kafka_bootstrap.as_deref(), Some("127.0.0.1:1111"));
    assert_eq!(config.listen, "127.0.0.1:2222".parse().unwrap());
    assert_eq!(config.secret_key.unwrap().expose(), "from-env");
    assert!(
        config.admin_token.is_none(),
        "an empty variable counts as unset"
    );
}

#[test]
fn bad_values_name_the_variable() {
    let dir = temp_dir("bad");
    let err = Config::from_sources(
        None,
        &env(&[
            (ENV_DATA_DIR, dir.to_str().unwrap()),
            (ENV_LISTEN, "localhost"),
        ]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("SLUICE_LISTEN: invalid value `localhost`"),
        "{err}"
    );

    let err = Config::from_sources(
        None,
        &env(&[
            (ENV_DATA_DIR, dir.to_str().unwrap()),
            (ENV_DATABASE_URL, "mysql://root:hunter2@db/x"),
        ]),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("SLUICE_DATABASE_URL"), "{text}");
    assert!(!text.contains("hunter2"), "password leaked: {text}");
}

#[test]
fn unknown_file_keys_are_rejected_with_their_name() {
    let dir = temp_dir("unknown");
    let file = dir.join("sluice.yaml");
    std::fs::write(&file, "listen: 127.0.0.1:1\nlisten_addr: nope\n").unwrap();
    let err = Config::from_sources(Some(&file), &env(&[(ENV_DATA_DIR, dir.to_str().unwrap())]))
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown field `listen_addr`"),
        "{err}"
    );
}

#[test]
fn oidc_is_off_without_an_issuer() {
    let dir = temp_dir("oidc-off");
    let config =
        Config::from_sources(None, &env(&[(ENV_DATA_DIR, dir.to_str().unwrap())])).unwrap();
    assert!(config.oidc.is_none());
}

#[test]
fn oidc_from_the_environment_with_default_claims() {
    let dir = temp_dir("oidc-env");
    let config = Config::from_sources(
        None,
        &env(&[
            (ENV_DATA_DIR, dir.to_str().unwrap()),
            (ENV_OIDC_ISSUER, "https://idp.example.com/"),
            (ENV_OIDC_AUDIENCE, "sluice-console"),
            (ENV_OIDC_JWKS, "/etc/sluice/jwks.json"),
        ]),
    )
    .unwrap();
    let oidc = config.oidc.unwrap();
    assert_eq!(oidc.issuer, "https://idp.example.com/");
    assert_eq!(oidc.audience, "sluice-console");
    assert_eq!(oidc.jwks, JwksSource::File("/etc/sluice/jwks.json".into()));
    assert_eq!(
        (
            oidc.team_claim.as_str(),
            oidc.role_claim.as_str(),
            oidc.name_claim.as_str()
        ),
        ("team", "role", "email")
    );
    assert_eq!(
        oidc.refetch_interval,
        crate::auth::jwt::DEFAULT_REFETCH_INTERVAL
    );
}

#[test]
fn oidc_from_the_file_in_camel_case_with_the_environment_on_top() {
    let dir = temp_dir("oidc-file");
    let file = dir.join("sluice.yaml");
    std::fs::write(
        &file,
        "oidcIssuer: https://idp.example.com\n\
         oidcAudience: from-file\n\
         oidcJwks: https://idp.example.com/.well-known/jwks.json\n\
         oidcTeamClaim: https://sluice.example.com/team\n\
         oidcRoleClaim: sluice_role\n\
         oidcNameClaim: preferred_username\n",
    )
    .unwrap();
    let config = Config::from_sources(
        Some(&file),
        &env(&[
            (ENV_DATA_DIR, dir.to_str().unwrap()),
            (ENV_OIDC_AUDIENCE, "from-env"),
            (ENV_OIDC_ROLE_CLAIM, ""),
        ]),
    )
    .unwrap();
    let oidc = config.oidc.unwrap();
    assert_eq!(oidc.issuer, "https://idp.example.com");
    assert_eq!(oidc.audience, "from-env");
    assert_eq!(
        oidc.jwks,
        JwksSource::Url("https://idp.example.com/.well-known/jwks.json".into())
    );
    assert_eq!(oidc.team_claim, "https://sluice.example.com/team");
    assert_eq!(
        oidc.role_claim, "sluice_role",
        "an empty variable counts as unset"
    );
    assert_eq!(oidc.name_claim, "preferred_username");
}

#[test]
fn incomplete_oidc_settings_name_what_is_missing() {
    let dir = temp_dir("oidc-incomplete");
    let data_dir = (ENV_DATA_DIR, dir.to_str().unwrap());
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[(ENV_OIDC_ISSUER, "https://idp"), (ENV_OIDC_JWKS, "/k.json")],
            "SLUICE_OIDC_AUDIENCE is required when SLUICE_OIDC_ISSUER is set",
        ),
        (
            &[(ENV_OIDC_ISSUER, "https://idp"), (ENV_OIDC_AUDIENCE, "a")],
            "SLUICE_OIDC_JWKS is required when SLUICE_OIDC_ISSUER is set",
        ),
        (
            &[(ENV_OIDC_AUDIENCE, "a")],
            "SLUICE_OIDC_ISSUER is required when SLUICE_OIDC_AUDIENCE is set",
        ),
        (
            &[
                (ENV_OIDC_ISSUER, "https://idp"),
                (ENV_OIDC_AUDIENCE, "a"),
                (ENV_OIDC_JWKS, "https://"),
            ],
            "SLUICE_OIDC_JWKS: invalid value `https://`",
        ),
    ];
    for (pairs, expected) in cases {
        let mut vars = env(pairs);
        vars.insert(data_dir.0.to_owned(), data_dir.1.to_owned());
        let err = Config::from_sources(None, &vars).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{err}");
    }
}

#[test]
fn secrets_never_print() {
    let secret = Secret::new("hunter2");
    assert_eq!(
        format!("{secret} {secret:?}"),
        "<redacted> Secret(<redacted>)"
    );
    let dir = temp_dir("secrets");
    let config = Config::from_sources(
        None,
        &env(&[
            (ENV_DATA_DIR, dir.to_str().unwrap()),
            (ENV_ADMIN_TOKEN, "hunter2"),
        ]),
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn the_consoles_oidc_sign_in_needs_both_endpoints_as_http_urls() {
    let dir = temp_dir("oidc-console");
    let base = [
        (ENV_DATA_DIR, dir.to_str().unwrap()),
        (ENV_OIDC_ISSUER, "https://idp.example.com"),
        (ENV_OIDC_AUDIENCE, "sluice-console"),
        (ENV_OIDC_JWKS, "/k.json"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut vars = env(&base);
        vars.extend(env(extra));
        Config::from_sources(None, &vars)
    };
    let off = with(&[]).unwrap().oidc.unwrap();
    assert_eq!(
        (
            off.authorization_endpoint,
            off.token_endpoint,
            off.client_id
        ),
        (None, None, None)
    );
    let on = with(&[
        (ENV_OIDC_AUTHORIZE_URL, "https://idp.example.com/auth"),
        (ENV_OIDC_TOKEN_URL, " https://idp.example.com/token "),
        (ENV_OIDC_CLIENT_ID, "console"),
    ])
    .unwrap()
    .oidc
    .unwrap();
    assert_eq!(
        on.authorization_endpoint.as_deref(),
        Some("https://idp.example.com/auth")
    );
    assert_eq!(
        on.token_endpoint.as_deref(),
        Some("https://idp.example.com/token")
    );
    assert_eq!(on.client_id.as_deref(), Some("console"));
    for (extra, expected) in [
        (
            [(ENV_OIDC_AUTHORIZE_URL, "https://idp.example.com/auth")],
            "SLUICE_OIDC_TOKEN_URL is required when SLUICE_OIDC_AUTHORIZE_URL is set",
        ),
        (
            [(ENV_OIDC_TOKEN_URL, "https://idp.example.com/token")],
            "SLUICE_OIDC_AUTHORIZE_URL is required when SLUICE_OIDC_TOKEN_URL is set",
        ),
        (
            [(ENV_OIDC_TOKEN_URL, "ftp://idp.example.com/token")],
            "SLUICE_OIDC_TOKEN_URL: invalid value",
        ),
    ] {
        let err = with(&extra).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{err}");
    }
    // Without an issuer they are a half-done configuration.
    let err = Config::from_sources(
        None,
        &env(&[
            (ENV_DATA_DIR, dir.to_str().unwrap()),
            (ENV_OIDC_CLIENT_ID, "console"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("SLUICE_OIDC_ISSUER is required when SLUICE_OIDC_CLIENT_ID is set"),
        "{err}"
    );
}
