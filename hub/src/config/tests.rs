//! Configuration: the documented schema loads; every mistake names its field and a fix.

use std::io::Write;
use std::path::Path;

use super::validate::parse_store;
use super::*;

const HUB_KEY: &str = "kHh5ed0ptUHkxxbZCdqRJo9Kh2q+PUKEO3RMQaSvrHI=";
const PEER: &str = "Pta3Xd8LZ0pRQx31Yx5FgW5Jwti0S8ojXZ0ZT8fP3AA=";

fn parse(text: &str) -> Result<HubConfig, ConfigError> {
    parse_str(text, Format::Yaml, "hub.yaml", Path::new("/nonexistent"))
}

fn errors(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn documented_example_loads_in_yaml_and_toml() {
    let c = parse(&format!(
        "private_key: {HUB_KEY}\nlisten: [\"0.0.0.0:3478\", \"[::]:3478\"]\nadmission:\n  allow: [{PEER}]\nstore: memory\n"
    ))
    .unwrap();
    assert_eq!(c.listen.len(), 2);
    assert_eq!(
        c.admission,
        AdmissionConfig::Allow([PEER.parse().unwrap()].into_iter().collect())
    );
    assert_eq!(c.store, Store::Memory);
    let t = parse_str(
        &format!("private_key = \"{HUB_KEY}\"\nlisten = [\"127.0.0.1:3478\"]\n[admission]\nallow_any = true\n"),
        Format::Toml,
        "hub.toml",
        Path::new("/"),
    )
    .unwrap();
    assert_eq!(t.admission, AdmissionConfig::Any);
    assert_eq!(t.store, Store::Memory, "memory is the default");
    assert_eq!(
        t.relay,
        RelayConfig::default(),
        "the relay is on by default"
    );
}

#[test]
fn relay_settings_are_checked() {
    let base = format!(
        "private_key: {HUB_KEY}\nlisten: [\"0.0.0.0:3478\"]\nadmission:\n  allow_any: true\n"
    );
    let c = parse(&format!(
        "{base}relay:\n  enabled: false\n  rate_mbit: 50\n"
    ))
    .unwrap();
    assert_eq!(
        c.relay,
        RelayConfig {
            enabled: false,
            rate_mbit: 50,
            tls: None,
        }
    );
    let e = errors(&format!(
        "{base}relay:\n  enabled: yes please\n  rate_mbit: 0\n  tls: {{}}\n  tcp: 1\n"
    ));
    for want in [
        "hub.yaml: relay.tcp: unknown field; expected one of: enabled, rate_mbit, tls",
        "hub.yaml: relay.tls.listen: missing",
        "hub.yaml: relay.tls.cert_file: missing",
        "hub.yaml: relay.enabled: expected true or false, found a string",
        "hub.yaml: relay.rate_mbit: must be from 1 to 100000 (Mbit/s per client)",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let e = errors(&format!("{base}relay: on\n"));
    assert!(
        e.contains("hub.yaml: relay: expected a map (enabled, rate_mbit, tls)"),
        "{e}"
    );
}

/// A self-signed certificate and its key (PEM) for 127.0.0.1, made with the openssl CLI;
/// `None` (the test says it is skipped) where openssl is missing.
fn self_signed(dir: &Path) -> Option<()> {
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=vpnhub test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("hub.key.pem"))
        .arg("-out")
        .arg(dir.join("hub.crt.pem"))
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: the openssl CLI is missing (scripts/install-deps.sh installs it)");
    }
    ok.then_some(())
}

#[test]
fn relay_tls_loads_a_certificate_and_names_the_file_that_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    if self_signed(dir.path()).is_none() {
        return;
    }
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    let parse_in = |tls: &str| {
        parse_str(
            &format!(
                "private_key: {HUB_KEY}\nlisten: [\"0.0.0.0:3478\"]\nadmission:\n  allow_any: true\nrelay:\n  tls:\n{tls}"
            ),
            Format::Yaml,
            "hub.yaml",
            dir.path(),
        )
    };
    let c = parse_in(
        "    listen: \"0.0.0.0:443\"\n    cert_file: hub.crt.pem\n    key_file: hub.key.pem\n",
    )
    .unwrap();
    let tls = c.relay.tls.expect("tls");
    assert_eq!(tls.listen, "0.0.0.0:443".parse().unwrap());
    assert_eq!(
        tls.cert_file,
        dir.path().join("hub.crt.pem"),
        "relative to the config"
    );
    for (tls, want) in [
        (
            "    listen: \"hub.example:443\"\n    cert_file: hub.crt.pem\n    key_file: hub.key.pem\n",
            "hub.yaml: relay.tls.listen: `hub.example:443` is not IP:PORT",
        ),
        (
            "    listen: \"0.0.0.0:443\"\n    cert_file: junk.pem\n    key_file: hub.key.pem\n",
            "hub.yaml: relay.tls.cert_file: ",
        ),
        (
            "    listen: \"0.0.0.0:443\"\n    cert_file: hub.crt.pem\n    key_file: missing.pem\n",
            "hub.yaml: relay.tls.key_file: ",
        ),
        (
            "    listen: \"0.0.0.0:443\"\n    cert_file: hub.crt.pem\n    key_file: hub.crt.pem\n",
            "hub.yaml: relay.tls.key_file: ",
        ),
    ] {
        let e = parse_in(tls).unwrap_err().to_string();
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

#[test]
fn key_file_is_read_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("hub.key")).unwrap();
    writeln!(f, "{HUB_KEY}").unwrap();
    let cfg = dir.path().join("hub.yaml");
    std::fs::write(
        &cfg,
        "private_key_file: hub.key\nlisten: [\"127.0.0.1:0\"]\nadmission: {allow_any: true}\n",
    )
    .unwrap();
    let c = load(&cfg).unwrap();
    assert_eq!(c.private_key.to_base64(), HUB_KEY);
    assert_eq!(c.private_key_file, Some(dir.path().join("hub.key")));
}

#[test]
fn every_problem_is_named_with_its_field() {
    let e = errors(&format!(
        "private_key: nope!\nlisten: [\"hub.example:3478\", 5]\nadmission:\n  allow: [{PEER}, {PEER}, xx]\n  allow_all: true\nstore: postgres\nport: 1\n"
    ));
    for want in [
        "hub.yaml: port: unknown field; expected one of: private_key_file, private_key, listen, admission, store, relay",
        "hub.yaml: private_key: not valid base64; make one with `vpnctl genkey`",
        "hub.yaml: listen[0]: `hub.example:3478` is not IP:PORT",
        "hub.yaml: listen[1]: expected a string, found an integer",
        "hub.yaml: admission.allow_all: unknown field; expected one of: allow, allow_any",
        "hub.yaml: admission.allow[1]: the same key as admission.allow[0]; remove one",
        "hub.yaml: admission.allow[2]: not valid base64",
        "hub.yaml: store: `postgres` is not a store",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

#[test]
fn missing_and_conflicting_fields() {
    let e = errors("{}\n");
    assert!(e.contains("private_key_file: missing"), "{e}");
    assert!(e.contains("listen: missing"), "{e}");
    assert!(e.contains("admission: missing"), "{e}");
    let e = errors(&format!(
        "private_key: {HUB_KEY}\nprivate_key_file: k\nlisten: []\nadmission: {{allow: [{PEER}], allow_any: true}}\n"
    ));
    assert!(e.contains("both set; set only one"), "{e}");
    assert!(e.contains("listen: must not be empty"), "{e}");
    assert!(
        e.contains("admission: `allow` and `allow_any: true` are both set"),
        "{e}"
    );
    let e = errors(&format!(
        "private_key: {HUB_KEY}\nlisten: [\"0.0.0.0:1\", \"0.0.0.0:1\"]\nadmission: {{allow_any: yes please}}\n"
    ));
    assert!(
        e.contains("listen[1]: 0.0.0.0:1 is already listen[0]"),
        "{e}"
    );
    assert!(
        e.contains("admission.allow_any: expected true or false"),
        "{e}"
    );
}

#[test]
fn syntax_duplicates_and_hostile_text_are_errors_not_panics() {
    assert!(errors("listen: [\n").contains("syntax error"));
    let e = errors(&format!(
        "private_key: {HUB_KEY}\nlisten: [\"0.0.0.0:1\"]\nadmission: {{allow_any: true}}\nlisten: []\n"
    ));
    assert!(
        e.contains("hub.yaml: listen: set more than once (again on line"),
        "{e}"
    );
    assert!(errors("a: &x [1]\nb: *x\n").contains("aliases"));
    assert!(errors(&("- ".repeat(10_000) + "x\n")).contains("nested deeper"));
    assert!(errors("- 1\n- 2\n").contains("top level must be a map"));
    assert!(errors(&"#".repeat(2 << 20)).contains("larger than"));
}

#[test]
fn redis_store_urls_are_parsed_and_accepted() {
    assert_eq!(
        parse_store("redis://10.0.0.5:6380/2"),
        Ok(Store::Redis {
            host: "10.0.0.5".into(),
            port: 6380,
            db: 2
        })
    );
    assert_eq!(
        parse_store("redis://cache"),
        Ok(Store::Redis {
            host: "cache".into(),
            port: 6379,
            db: 0
        })
    );
    assert!(parse_store("redis://[::1]:6379/0").is_ok());
    for bad in [
        "redis://",
        "redis://h:0",
        "redis://h:x/1",
        "redis://h/db",
        "redis://u:p@h",
    ] {
        assert!(parse_store(bad).is_err(), "{bad}");
    }
    let c = parse_str(
        &format!(
            "private_key: {HUB_KEY}\nlisten: [\"0.0.0.0:1\"]\nadmission: {{allow_any: true}}\nstore: redis://127.0.0.1:6379/0\n"
        ),
        Format::Yaml,
        "hub.yaml",
        Path::new("."),
    )
    .unwrap();
    assert_eq!(
        c.store,
        Store::Redis {
            host: "127.0.0.1".into(),
            port: 6379,
            db: 0
        }
    );
}

#[test]
fn empty_allow_list_warns_and_own_key_is_refused() {
    let c = parse(&format!(
        "private_key: {HUB_KEY}\nlisten: [\"0.0.0.0:1\"]\nadmission: {{allow: []}}\n"
    ))
    .unwrap();
    assert!(c.warnings[0].contains("no peer may register"));
    let own = HUB_KEY
        .parse::<protocol::keys::PrivateKey>()
        .unwrap()
        .public_key();
    let e = errors(&format!(
        "private_key: {HUB_KEY}\nlisten: [\"0.0.0.0:1\"]\nadmission: {{allow: [\"{own}\"]}}\n"
    ));
    assert!(
        e.contains("admission.allow[0]: this is the hub's own public key"),
        "{e}"
    );
}
