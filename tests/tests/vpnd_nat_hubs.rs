//! Two vpnhubs over one Redis with vpnd peers homed on different hubs (issue 10: "two hubs
//! over one Redis: peers homed on different hubs punch through"), on the shared NAT lab
//! (`e2e::nat_lab`).
//!
//! ```text
//!                     inet: redis-server on 127.0.0.1:6379
//!                           hub 1 on 198.18.0.3:3478 ── redis ── hub 2 on 198.18.0.4:3478
//!   host A ── router (EIM+APDF) ──┘                                        │
//!   host B ── router (EIM+APDF) ───────────────────────────────────────────┘
//! ```
//!
//! A lists hub 1 only, B hub 2 only, behind two plain masquerading NATs (the commonest
//! punchable pair, and one where both sides must probe: each NAT lets in only what answers its
//! host's own probes). Neither hub has both peers, so lookups and "call me maybe" signals must
//! cross Redis:
//!
//! * both end `punched` with each other's public address, within 2 s of both being registered
//!   (the time is printed), ping both ways, and the hubs' counters show the lookups and
//!   signals that crossed;
//! * hub 1 is killed (SIGKILL by its PID) for 5 s and started again with the same key and
//!   configuration (a new process: new hub id, no registrations): the punched path never
//!   drops and pings pass throughout, A registers with the new process (its `registered`
//!   gauge 1, A's `hubs[0].state` `connected`; the time is printed), A's presence record in
//!   Redis names the new process (so other hubs' signals for A reach it), and pings still
//!   pass. vpnd does not notice a short outage (nothing goes to the hub while a path works):
//!   the new process learns of A at A's next renewal, 45 s after the last one.
//!
//! And peers homed on different hubs that cannot punch (both behind symmetric NATs) relay
//! through one hub (issue 11: "Two hubs over Redis: peers homed on different hubs relay
//! through the receiver's hub"): relays never forward to each other, so the peer with the
//! lower key, told by its hub that the other is registered elsewhere (RelayElsewhere), dials
//! the other's hub (shown as `on_demand` in its `hubs`), and both show `path: relay` through
//! that hub, the other's home; pings and a TCP stream pass.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::nat_lab::{Host, LabHub, NatLab, NatType, SERVER_IPS};
use e2e::vpnd::{peer_in, PeerConfig, Vpnd, VpndConfig};
use e2e::{ping, ping_until, require_root_with, tcp_transfer_timeout, TestGuard, WgKeys};
use serde_json::Value;

/// The WireGuard port of both peers (each in its own namespace).
const PORT: u16 = 51820;
/// From start to both `punched`: registration, a lookup over Redis, a probe round and its
/// repeat.
const VERDICT: Duration = Duration::from_secs(25);
/// The issue's target from both peers registered to `punched`.
const PUNCH_TARGET: Duration = Duration::from_secs(2);
/// How long pings over a punched path may take to pass.
const PING_WAIT: Duration = Duration::from_secs(5);
/// Between two `vpnctl show` polls.
const POLL: Duration = Duration::from_millis(100);
/// How long hub 1 stays down: longer than vpnd's 4 s of unanswered UDP before it tries the
/// hub over TCP, in case a STUN check or renewal falls into the gap.
const DOWN: Duration = Duration::from_secs(5);
/// vpnd learns that its hub lost its registration when it next renews (a third of the hub's
/// 90 s TTL after the last one, so up to 30 s after the restart), sooner when it looks a peer
/// up (the hub answers `Unregistered`). Plus generous slack for a loaded machine.
const REREGISTER: Duration = Duration::from_secs(55);
/// Hub counters are logged once a second.
const STATS_WAIT: Duration = Duration::from_secs(3);

/// One vpnd peer homed on one hub.
struct Peer {
    vpnd: Vpnd,
    keys: WgKeys,
    tunnel: String,
}

/// The two peers, each knowing the other's key only, A homed on `hub_a`, B on `hub_b`.
struct Pair {
    a: Peer,
    b: Peer,
}

impl Pair {
    fn start(a: &Host, b: &Host, hub_a: &LabHub, hub_b: &LabHub) -> Pair {
        let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
        let (ta, tb) = ("10.83.0.1", "10.83.0.2");
        let config = |me: &WgKeys, ip: &str, hub: &LabHub, other: &WgKeys, other_ip: &str| {
            VpndConfig::new("vpnhubs0", me)
                .listen_port(PORT)
                .addresses(&[&format!("{ip}/24")])
                .hub(&hub.address, &hub.public_key)
                .peer(PeerConfig::new(&other.public, &[&format!("{other_ip}/32")]))
        };
        let va = Vpnd::start(a.ns(), &config(&ka, ta, hub_a, &kb, tb));
        let vb = Vpnd::start(b.ns(), &config(&kb, tb, hub_b, &ka, ta));
        Pair {
            a: Peer {
                vpnd: va,
                keys: ka,
                tunnel: ta.to_owned(),
            },
            b: Peer {
                vpnd: vb,
                keys: kb,
                tunnel: tb.to_owned(),
            },
        }
    }

    /// Both `show --json` results.
    fn shows(&self) -> (Value, Value) {
        (self.a.vpnd.show_json(), self.b.vpnd.show_json())
    }

    /// Each side's view of the other (`peers[]` entry).
    fn views(&self) -> (Value, Value) {
        let (a, b) = self.shows();
        (
            peer_in(&a, &self.b.keys.public),
            peer_in(&b, &self.a.keys.public),
        )
    }

    fn both_punched(&self) -> bool {
        let (a, b) = self.views();
        a["path"] == "punched" && b["path"] == "punched"
    }

    fn diagnostics(&self, lab: &NatLab<'_>, hubs: &[&LabHub]) -> String {
        let (a, b) = self.shows();
        let hub_logs: String = hubs.iter().map(|h| lab.hub_logs(h)).collect();
        format!(
            "A: {a:#}\nB: {b:#}\nA logs:\n{}\nB logs:\n{}\nhubs:\n{hub_logs}",
            self.a.vpnd.proc().logs(),
            self.b.vpnd.proc().logs()
        )
    }
}

/// The hub's counters once `ok` holds for them, or the last ones after [`STATS_WAIT`].
fn stats_when(
    lab: &NatLab<'_>,
    hub: &LabHub,
    ok: impl Fn(&BTreeMap<String, u64>) -> bool,
) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + STATS_WAIT;
    loop {
        let s = lab.hub_stats(hub);
        if ok(&s) || Instant::now() >= deadline {
            return s;
        }
        std::thread::sleep(POLL);
    }
}

/// Seconds since midnight (UTC) of the first log line containing `needle`; vpnd's log lines
/// start with an RFC 3339 timestamp (`2026-01-02T03:04:05.678901Z`).
fn log_time(logs: &str, needle: &str) -> Option<f64> {
    let line = logs.lines().find(|l| l.contains(needle))?;
    let time = line.split_whitespace().next()?.split_once('T')?.1;
    let mut parts = time.trim_end_matches('Z').split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// From both peers registered to both having selected their punched path, by their logs.
fn punch_time(pair: &Pair) -> Option<Duration> {
    let (a, b) = (pair.a.vpnd.proc().stderr(), pair.b.vpnd.proc().stderr());
    let registered =
        log_time(&a, "registered with the hub")?.max(log_time(&b, "registered with the hub")?);
    let punched = log_time(&a, "kind=Punched")?.max(log_time(&b, "kind=Punched")?);
    // Across midnight the clock wraps.
    let secs = (punched - registered).rem_euclid(86_400.0);
    Some(Duration::from_secs_f64(secs))
}

/// The hub id (hex) of `hub`'s current process, from its log (`this hub is vpnhub:hub:<id>`).
fn hub_id(lab: &NatLab<'_>, hub: &LabHub) -> String {
    let logs = lab.hub_logs(hub);
    logs.lines()
        .rev()
        .find_map(|l| l.split_once("this hub is vpnhub:hub:"))
        .map(|(_, id)| id.trim().to_owned())
        .unwrap_or_else(|| panic!("no hub id in the log of {}:\n{logs}", hub.address))
}

/// The hub ids (hex, sorted) that the presence records in Redis name: each record is the
/// registering hub's 16-byte id followed by the peer's Presence (docs/hub.md, "Several hubs").
fn record_hubs(lab: &NatLab<'_>) -> Vec<String> {
    const SCRIPT: &str = "local out = {} \
        for _, k in ipairs(redis.call('KEYS', 'vpnhub:peer:*')) do \
          local v = redis.call('GET', k) local h = '' \
          for i = 1, 16 do h = h .. string.format('%02x', string.byte(v, i) or 0) end \
          table.insert(out, h) \
        end return out";
    let out = lab
        .inet()
        .exec_ok(["redis-cli", "--raw", "EVAL", SCRIPT, "0"]);
    let mut ids: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn count(s: &BTreeMap<String, u64>, name: &str) -> u64 {
    s.get(name).copied().unwrap_or(0)
}

#[test]
fn peers_homed_on_two_hubs_over_redis_punch_and_outlive_a_hub_restart() {
    if !require_root_with(&["nft", "conntrack", "ss", "ping", "redis-server"]) {
        return;
    }
    let guard = TestGuard::new("nat-hubs");
    let mut lab = NatLab::new(&guard);
    let redis = lab.start_redis();
    let hub1 = lab.start_hub_with(SERVER_IPS[2], &redis);
    let hub2 = lab.start_hub_with(SERVER_IPS[3], &redis);
    let (ra, rb) = (lab.router(NatType::EimApdf), lab.router(NatType::EimApdf));
    let (ha, hb) = (lab.host(&ra), lab.host(&rb));
    // Both hubs subscribed to their Redis channel before any peer registers.
    for hub in [&hub1, &hub2] {
        let s = stats_when(&lab, hub, |s| count(s, "store_connected") == 1);
        assert_eq!(
            count(&s, "store_connected"),
            1,
            "hub {} not on Redis: {s:?}\n{}",
            hub.address,
            lab.hub_logs(hub)
        );
    }

    let pair = Pair::start(&ha, &hb, &hub1, &hub2);
    let started = Instant::now();
    let deadline = started + VERDICT;
    let mut registered: Option<Instant> = None;
    loop {
        let (a, b) = pair.shows();
        let connected = |v: &Value| v["interface"]["nat"]["hubs"][0]["state"] == "connected";
        if registered.is_none() && connected(&a) && connected(&b) {
            registered = Some(Instant::now());
        }
        let (pa, pb) = (
            peer_in(&a, &pair.b.keys.public),
            peer_in(&b, &pair.a.keys.public),
        );
        if pa["path"] == "punched" && pb["path"] == "punched" {
            assert_eq!(
                pa["path_endpoint"],
                format!("{}:{PORT}", hb.public_ip),
                "{pa:#}"
            );
            assert_eq!(
                pb["path_endpoint"],
                format!("{}:{PORT}", ha.public_ip),
                "{pb:#}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not punched within {VERDICT:?}:\n{}",
            pair.diagnostics(&lab, &[&hub1, &hub2])
        );
        std::thread::sleep(POLL);
    }
    // vpnd registers and punches within tens of milliseconds, faster than `show` can be
    // polled, so the time comes from the daemons' own log lines (one clock).
    let since =
        punch_time(&pair).unwrap_or_else(|| registered.map(|t| t.elapsed()).unwrap_or_default());
    eprintln!(
        "peers on two hubs: punched {:.3} s after both registered ({:.2} s after starting both)",
        since.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        since <= PUNCH_TARGET,
        "punched only {since:?} after both registered (target {PUNCH_TARGET:?})"
    );
    assert!(
        ping_until(ha.ns(), &pair.b.tunnel, PING_WAIT)
            && ping_until(hb.ns(), &pair.a.tunnel, PING_WAIT),
        "punched, but pings do not pass both ways:\n{}",
        pair.diagnostics(&lab, &[&hub1, &hub2])
    );

    // Each hub has its own peer only, so what the peers learnt of each other crossed Redis:
    // a lookup answered from it and a "call me maybe" handed to the other hub and delivered
    // (which side asks first depends on which registered first).
    let own_peer = |s: &BTreeMap<String, u64>| count(s, "registered") >= 1;
    let s1 = stats_when(&lab, &hub1, own_peer);
    let s2 = stats_when(&lab, &hub2, own_peer);
    let show_counters = |s: &BTreeMap<String, u64>| {
        [
            "registered",
            "lookups_remote",
            "signals_to_remote",
            "signals_from_remote",
            "signals_to_offline",
        ]
        .map(|k| format!("{k}={}", count(s, k)))
        .join(" ")
    };
    eprintln!(
        "hub 1: {}\nhub 2: {}",
        show_counters(&s1),
        show_counters(&s2)
    );
    assert!(own_peer(&s1) && own_peer(&s2), "{s1:?}\n{s2:?}");
    for name in ["lookups_remote", "signals_to_remote", "signals_from_remote"] {
        assert!(
            count(&s1, name) + count(&s2, name) >= 1,
            "no {name} on either hub:\n{s1:?}\n{s2:?}"
        );
    }

    let (old_id1, id2) = (hub_id(&lab, &hub1), hub_id(&lab, &hub2));
    assert_eq!(
        record_hubs(&lab),
        sorted(vec![old_id1.clone(), id2.clone()])
    );

    // Hub 1 crashes: the punched path does not need it.
    lab.kill_hub(&hub1);
    let killed = Instant::now();
    let mut broken: Vec<String> = Vec::new();
    let check = |what: &str, broken: &mut Vec<String>| {
        if !pair.both_punched() {
            let (a, b) = pair.views();
            broken.push(format!(
                "{what} ({:.1} s after the kill): not punched: A {} / B {}",
                killed.elapsed().as_secs_f64(),
                a["path"],
                b["path"]
            ));
        }
        if !ping(ha.ns(), &pair.b.tunnel, 1) {
            broken.push(format!(
                "{what} ({:.1} s after the kill): a ping from A is lost",
                killed.elapsed().as_secs_f64()
            ));
        }
    };
    while killed.elapsed() < DOWN {
        check("hub 1 down", &mut broken);
        std::thread::sleep(Duration::from_millis(300));
    }
    let (a, _) = pair.shows();
    let while_down = a["interface"]["nat"]["hubs"][0].clone();

    // Started again as the same hub (key, configuration), as a new process without
    // registrations: A registers with it again.
    lab.restart_hub(&hub1);
    let restarted = Instant::now();
    let mut states: Vec<String> = Vec::new();
    let reregistered = loop {
        let (a, _) = pair.shows();
        let h = &a["interface"]["nat"]["hubs"][0];
        let state = format!("{}/{}", h["state"], h["transport"]);
        if states.last() != Some(&state) {
            states.push(state);
        }
        if h["state"] == "connected" && count(&lab.hub_stats(&hub1), "registered") >= 1 {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < REREGISTER,
            "A not registered with the restarted hub 1 within {REREGISTER:?} (states {states:?}, \
             hub 1 {:?}); meanwhile: {broken:?}\n{}",
            lab.hub_stats(&hub1),
            pair.diagnostics(&lab, &[&hub1, &hub2])
        );
        check("hub 1 restarted", &mut broken);
        std::thread::sleep(Duration::from_millis(500));
    };
    check("A registered again", &mut broken);
    // A's record now names the new process, so signals for A from hub 2's peers reach it.
    let new_id1 = hub_id(&lab, &hub1);
    assert_ne!(new_id1, old_id1, "a restarted hub has a new id");
    let records = sorted(vec![new_id1.clone(), id2.clone()]);
    let deadline = Instant::now() + STATS_WAIT;
    while record_hubs(&lab) != records && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    assert_eq!(
        record_hubs(&lab),
        records,
        "A's presence in Redis does not name the restarted hub 1 ({new_id1}; it was {old_id1})"
    );
    eprintln!(
        "hub 1 down {:.1} s (A's hub then: {} {}); A registered with the new process {:.1} s \
         after its restart (A's hub states seen: {})",
        DOWN.as_secs_f64(),
        while_down["state"],
        while_down["transport"],
        reregistered.as_secs_f64(),
        states.join(" -> ")
    );
    assert!(
        broken.is_empty(),
        "the tunnel suffered from the hub restart:\n{}\n{}",
        broken.join("\n"),
        pair.diagnostics(&lab, &[&hub1, &hub2])
    );
    assert!(
        ping_until(hb.ns(), &pair.a.tunnel, PING_WAIT),
        "no ping from B after the restart:\n{}",
        pair.diagnostics(&lab, &[&hub1, &hub2])
    );
}

/// From start to both relayed across two hubs: registration, a relay request answered with
/// RelayElsewhere over Redis, STUN and registration with the other hub, the channel.
const RELAYED: Duration = Duration::from_secs(30);

#[test]
fn peers_homed_on_two_hubs_relay_through_one_of_them() {
    if !require_root_with(&["nft", "conntrack", "ss", "ping", "redis-server"]) {
        return;
    }
    let guard = TestGuard::new("nat-hubs-relay");
    let mut lab = NatLab::new(&guard);
    let redis = lab.start_redis();
    let hub1 = lab.start_hub_with(SERVER_IPS[2], &redis);
    let hub2 = lab.start_hub_with(SERVER_IPS[3], &redis);
    let (ra, rb) = (
        lab.router(NatType::Symmetric),
        lab.router(NatType::Symmetric),
    );
    let (ha, hb) = (lab.host(&ra), lab.host(&rb));
    for hub in [&hub1, &hub2] {
        let s = stats_when(&lab, hub, |s| count(s, "store_connected") == 1);
        assert_eq!(count(&s, "store_connected"), 1, "{}", lab.hub_logs(hub));
    }
    let pair = Pair::start(&ha, &hb, &hub1, &hub2);
    // The peer with the lower key dials the other's hub; the relay runs through the hub of
    // the one dialled (its home).
    let a_dials = pair.a.keys.public_bytes() < pair.b.keys.public_bytes();
    let relay_hub = if a_dials { &hub2 } else { &hub1 };
    let started = Instant::now();
    let relayed = || {
        let (a, b) = pair.views();
        a["path"] == "relay"
            && b["path"] == "relay"
            && a["relay"] == relay_hub.address
            && b["relay"] == relay_hub.address
    };
    while !relayed() {
        assert!(
            started.elapsed() < RELAYED,
            "not relayed through {} within {RELAYED:?}\n{}",
            relay_hub.address,
            pair.diagnostics(&lab, &[&hub1, &hub2])
        );
        std::thread::sleep(POLL);
    }
    println!(
        "relayed through {} {:.1} s after start",
        relay_hub.address,
        started.elapsed().as_secs_f64()
    );
    let (a, b) = pair.shows();
    let dialler = if a_dials { &a } else { &b };
    let hubs = dialler["interface"]["nat"]["hubs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        hubs.iter()
            .any(|h| h["address"] == relay_hub.address && h["on_demand"] == true),
        "the other's hub is dialled on demand: {hubs:#?}"
    );
    assert!(
        ping_until(ha.ns(), &pair.b.tunnel, PING_WAIT),
        "A pings B through the relay\n{}",
        pair.diagnostics(&lab, &[&hub1, &hub2])
    );
    assert!(ping_until(hb.ns(), &pair.a.tunnel, PING_WAIT), "B pings A");
    let (sent, received) = tcp_transfer_timeout(
        ha.ns(),
        hb.ns(),
        &pair.b.tunnel,
        1 << 20,
        Duration::from_secs(60),
    );
    assert_eq!(
        sent, received,
        "the stream through the other hub's relay arrives intact"
    );
    let s = stats_when(&lab, relay_hub, |s| count(s, "relay_frames") > 0);
    assert!(count(&s, "relay_frames") > 0, "{s:?}");
    let other = if a_dials { &hub1 } else { &hub2 };
    let s = stats_when(&lab, other, |s| count(s, "relay_elsewhere") > 0);
    assert!(
        count(&s, "relay_elsewhere") > 0,
        "the home hub said where: {s:?}"
    );
}
