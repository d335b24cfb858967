//! The NAT lab: emulated home routers, carrier-grade NAT and an "internet", built from network
//! namespaces and nftables, with the RFC 4787 mapping and filtering behaviours (issue 10).
//!
//! ```text
//!                         inet (ip_forward; servers on lo: 198.18.0.1 .. 198.18.0.9)
//!        ┌──────────────────┬───────┴──────────┬─────────────────────────┐
//!   198.18.1.0/24      198.18.2.0/24      198.18.3.0/24             198.18.4.0/24
//!   router 1 (NAT)     router 2 (NAT)     public host (no NAT)      router 3 (CGNAT)
//!   lan0 192.168.1.1   lan0 192.168.2.1                             lan0 100.64.3.1
//!    │    │             │                                            │           │
//!   host host          host                                    router 4 (NAT)  router 5 (NAT)
//!   .10  .11           .10                                     WAN 100.64.3.10  WAN 100.64.3.11
//!                                                              lan0 192.168.4.1 lan0 192.168.5.1
//! ```
//!
//! * Every attachment to the internet gets its own /24 `198.18.<n>.0/24` (`.1` on the inet
//!   side, `.2` on the device); the inet namespace routes between them, so every public address
//!   reaches every other one.
//! * Every router has a LAN bridge `lan0` with `.1` of its LAN (`192.168.<r>.0/24`, or
//!   `100.64.<r>.0/24` for a carrier-grade NAT); hosts and inner routers behind it get `.10`,
//!   `.11`, ... and a default route via `.1`. Two hosts behind one router talk over the bridge
//!   directly, as on a real LAN.
//! * The servers (coturn, hubs) run in the inet namespace on the addresses [`SERVER_IPS`]. With
//!   [`NatLab::start_coturn`] coturn answers STUN on [`STUN1`] and [`STUN2`] (port 3478) with RFC
//!   5780 behaviour discovery (alternate port 3479), so `turnutils_natdiscovery` can classify each
//!   NAT independently of vpnd ([`Host::natdiscovery`]). [`NatLab::start_hub`] runs one vpnhub;
//!   [`NatLab::start_hub_with`] runs several, e.g. over one Redis ([`NatLab::start_redis`], on
//!   the inet namespace's loopback), and [`NatLab::kill_hub`] / [`NatLab::restart_hub`] crash
//!   and restart one as the same hub (key and configuration).
//!
//! Each router translates what leaves on its WAN side and drops whatever arrives there unasked
//! (forwarded or addressed to the router itself), as real ones do. [`NatType`] documents the
//! nftables rules of each behaviour and why they produce it. Everything is IPv4.
//!
//! Namespaces live as long as the [`NatLab`] or the last handle ([`Router`], [`Host`]) holding
//! them; dropping them stops their processes and deletes them, also while a failing test unwinds.
//!
//! ```no_run
//! use e2e::nat_lab::{NatLab, NatType};
//!
//! let guard = e2e::TestGuard::new("example");
//! let mut lab = NatLab::new(&guard);
//! let router = lab.router(NatType::EimApdf);
//! let host = lab.host(&router);
//! let public = lab.public_host();
//! lab.start_coturn();
//! assert!(e2e::ping(host.ns(), &public.ip.to_string(), 1));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{run_with_input, run_with_timeout, Netns, Proc, TestGuard, VethPair};

/// The addresses servers use in the inet namespace (on its `lo`, so they are local there and
/// routed to from every attachment).
pub const SERVER_IPS: [Ipv4Addr; 9] = [
    Ipv4Addr::new(198, 18, 0, 1),
    Ipv4Addr::new(198, 18, 0, 2),
    Ipv4Addr::new(198, 18, 0, 3),
    Ipv4Addr::new(198, 18, 0, 4),
    Ipv4Addr::new(198, 18, 0, 5),
    Ipv4Addr::new(198, 18, 0, 6),
    Ipv4Addr::new(198, 18, 0, 7),
    Ipv4Addr::new(198, 18, 0, 8),
    Ipv4Addr::new(198, 18, 0, 9),
];
/// coturn's primary address.
pub const STUN1: Ipv4Addr = SERVER_IPS[0];
/// coturn's second address (RFC 5780's "alternate address").
pub const STUN2: Ipv4Addr = SERVER_IPS[1];
/// A free server address for a hub (see [`NatLab::inet`]).
pub const HUB_IP: Ipv4Addr = SERVER_IPS[2];
/// coturn's STUN port (its RFC 5780 alternate port is this plus one).
pub const STUN_PORT: u16 = 3478;

/// How long coturn may take to listen.
const COTURN_START: Duration = Duration::from_secs(10);
/// How long vpnhub may take to listen.
const HUB_START: Duration = Duration::from_secs(10);
/// How long redis-server may take to listen.
const REDIS_START: Duration = Duration::from_secs(10);
/// redis-server's port, on the inet namespace's own loopback (only hubs use it).
const REDIS_PORT: u16 = 6379;
/// `turnutils_natdiscovery` needs about 3 s per unanswered test; four at most.
const NATDISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A NAT's behaviour (RFC 4787 section 4.1 mapping, section 5 filtering), as the lab emulates it.
///
/// Every type masquerades to the router's WAN address (Linux keeps the host's source port when
/// it is free, so mappings are port-preserving in the lab), lets replies of tracked flows back
/// in (`ct state established,related`) and drops the rest of what arrives on the WAN side.
/// What differs:
///
/// * [`NatType::EimEif`] / [`NatType::EimAdf`]: Linux NAT alone is "port restricted": conntrack
///   only lets in the exact remote address and port a flow went to. So the router learns each
///   mapping from its outbound path (a dynamic map `cone`, mapped port → host address and port,
///   updated after source NAT in a `postrouting` filter chain) and a `prerouting` `dnat` sends
///   inbound datagrams for a learnt port to its host, which creates a new flow that the forward
///   chain accepts (`ct status dnat`). EIF dnats from any source; ADF only from addresses in
///   the set `adf` (mapped port . remote address) learnt from what the host sent, so any port
///   of an address the host has sent to gets in, and nothing else.
/// * [`NatType::EimApdf`]: plain masquerade plus conntrack: only the replies of a flow get in,
///   i.e. only from the remote address *and* port the host sent to.
/// * [`NatType::Symmetric`]: `masquerade random` picks a new random port for every flow, i.e.
///   per remote address and port (address-and-port-dependent mapping), with APDF filtering.
/// * [`NatType::UdpBlocked`]: like `EimApdf`, but every UDP datagram going out is dropped except
///   DNS (port 53): a network where only TCP works.
///
/// Mappings expire after the router's mapping timeout ([`RouterSpec::mapping_timeout`]): the
/// learnt `cone`/`adf` elements refreshed by outbound traffic only (RFC 4787 REQ-6), conntrack
/// entries by traffic either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NatType {
    /// Endpoint-independent mapping and filtering ("full cone").
    EimEif,
    /// Endpoint-independent mapping, address-dependent filtering ("restricted cone").
    EimAdf,
    /// Endpoint-independent mapping, address-and-port-dependent filtering ("port restricted
    /// cone"; plain Linux masquerade).
    EimApdf,
    /// Address-and-port-dependent mapping and filtering ("symmetric").
    Symmetric,
    /// No UDP out except DNS; TCP is NATed like `EimApdf`.
    UdpBlocked,
}

impl NatType {
    /// The four RFC 4787 behaviours (everything but [`NatType::UdpBlocked`]).
    pub const BEHAVIOURS: [NatType; 4] = [
        NatType::EimEif,
        NatType::EimAdf,
        NatType::EimApdf,
        NatType::Symmetric,
    ];

    /// The mapping behaviour a STUN client sees, `None` when UDP does not get through.
    pub fn mapping(self) -> Option<Behaviour> {
        match self {
            NatType::EimEif | NatType::EimAdf | NatType::EimApdf => {
                Some(Behaviour::EndpointIndependent)
            }
            NatType::Symmetric => Some(Behaviour::AddressAndPortDependent),
            NatType::UdpBlocked => None,
        }
    }

    /// The filtering behaviour a STUN client sees, `None` when UDP does not get through.
    pub fn filtering(self) -> Option<Behaviour> {
        match self {
            NatType::EimEif => Some(Behaviour::EndpointIndependent),
            NatType::EimAdf => Some(Behaviour::AddressDependent),
            NatType::EimApdf | NatType::Symmetric => Some(Behaviour::AddressAndPortDependent),
            NatType::UdpBlocked => None,
        }
    }

    /// What vpnd's `interface.nat.mapping` says behind this NAT (with two STUN servers).
    pub fn vpnd_mapping(self) -> &'static str {
        match self {
            NatType::EimEif | NatType::EimAdf | NatType::EimApdf => "endpoint_independent",
            NatType::Symmetric => "endpoint_dependent",
            NatType::UdpBlocked => "unknown",
        }
    }

    /// Whether the router learns mappings for inbound `dnat` (the cone types).
    fn is_cone(self) -> bool {
        matches!(self, NatType::EimEif | NatType::EimAdf)
    }
}

impl fmt::Display for NatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NatType::EimEif => "EIM+EIF",
            NatType::EimAdf => "EIM+ADF",
            NatType::EimApdf => "EIM+APDF",
            NatType::Symmetric => "symmetric",
            NatType::UdpBlocked => "UDP blocked",
        })
    }
}

/// An RFC 4787 / RFC 5780 mapping or filtering class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Endpoint-independent.
    EndpointIndependent,
    /// Address-dependent.
    AddressDependent,
    /// Address-and-port-dependent.
    AddressAndPortDependent,
}

impl Behaviour {
    /// Parses the words `turnutils_natdiscovery` uses ("Endpoint Independent", ...).
    fn from_natdiscovery(words: &str) -> Option<Behaviour> {
        match words {
            "Endpoint Independent" => Some(Behaviour::EndpointIndependent),
            "Address Dependent" => Some(Behaviour::AddressDependent),
            "Address and Port Dependent" => Some(Behaviour::AddressAndPortDependent),
            _ => None,
        }
    }
}

/// What to build: a router's NAT type, where it sits and its mapping timeout.
#[derive(Debug, Clone)]
pub struct RouterSpec {
    nat: NatType,
    behind: Option<Router>,
    carrier: bool,
    mapping_timeout: Option<Duration>,
}

impl RouterSpec {
    /// A router of type `nat` on the internet, with Linux's conntrack timeouts (UDP: 30 s,
    /// 120 s once a flow saw traffic both ways) and a 120 s timeout for learnt cone mappings.
    pub fn new(nat: NatType) -> RouterSpec {
        RouterSpec {
            nat,
            behind: None,
            carrier: false,
            mapping_timeout: None,
        }
    }

    /// Puts the router behind `parent` (on its LAN) instead of on the internet.
    pub fn behind(mut self, parent: &Router) -> RouterSpec {
        self.behind = Some(parent.clone());
        self
    }

    /// Numbers the LAN from the shared address space `100.64.<r>.0/24` (RFC 6598), as a
    /// carrier-grade NAT's customer side; purely cosmetic.
    pub fn carrier(mut self) -> RouterSpec {
        self.carrier = true;
        self
    }

    /// Forgets an idle UDP mapping after `timeout` (whole seconds, at least 1): sets the
    /// router's conntrack UDP timeouts and the timeout of learnt cone mappings.
    pub fn mapping_timeout(mut self, timeout: Duration) -> RouterSpec {
        self.mapping_timeout = Some(timeout);
        self
    }
}

/// A NAT router: its namespace and addresses.
#[derive(Debug, Clone)]
pub struct Router {
    ns: Arc<Netns>,
    /// The emulated behaviour.
    pub nat: NatType,
    /// The WAN address (public unless behind another router).
    pub wan_ip: Ipv4Addr,
    /// The WAN interface inside the router's namespace.
    pub wan_if: String,
    /// The address the world sees: `wan_ip`, or the outermost router's for a nested one.
    pub public_ip: Ipv4Addr,
    /// The LAN address (`.1`, the gateway of everything behind it).
    pub lan_ip: Ipv4Addr,
    index: u8,
}

impl Router {
    /// The router's namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// Forgets every mapping now, as a NAT that reboots or runs out of table space: deletes
    /// all conntrack entries (`conntrack -F`) and the learnt cone mappings. The next datagram
    /// out makes a new mapping (for the EIM types on the same port, when it is free).
    ///
    /// # Panics
    /// If `conntrack` or `nft` fails.
    pub fn flush_mappings(&self) {
        self.ns.exec_ok(["conntrack", "-F"]);
        if self.nat.is_cone() {
            self.ns
                .exec_ok(["nft", "flush", "map", "ip", "lab", "cone"]);
        }
        if self.nat == NatType::EimAdf {
            self.ns.exec_ok(["nft", "flush", "set", "ip", "lab", "adf"]);
        }
    }

    /// The number of UDP mappings conntrack holds (`conntrack -C -p udp` is not filtered, so
    /// this counts `conntrack -L -p udp` lines).
    pub fn udp_mappings(&self) -> usize {
        let out = self.ns.exec(["conntrack", "-L", "-p", "udp"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("udp"))
            .count()
    }

    /// The router's nftables ruleset, for failure messages.
    pub fn ruleset(&self) -> String {
        self.ns.exec_ok(["nft", "list", "ruleset"])
    }
}

/// A host: behind a router, or public.
#[derive(Debug, Clone)]
pub struct Host {
    ns: Arc<Netns>,
    /// The host's own address.
    pub ip: Ipv4Addr,
    /// Its default gateway.
    pub gateway: Ipv4Addr,
    /// The address the world sees (the outermost router's WAN address, or `ip`).
    pub public_ip: Ipv4Addr,
    /// The router it is behind, `None` for a public host.
    pub router: Option<Router>,
}

impl Host {
    /// The host's namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// Classifies the NATs between this host and coturn on `server` with
    /// `turnutils_natdiscovery -m -f` (RFC 5780 mapping and filtering discovery). Takes about
    /// 3 s per unanswered test (up to four).
    ///
    /// # Panics
    /// If the tool cannot run or does not finish within 30 s.
    pub fn natdiscovery(&self, server: Ipv4Addr) -> NatDiscovery {
        let server = server.to_string();
        let port = STUN_PORT.to_string();
        let mut cmd = self
            .ns
            .command(["turnutils_natdiscovery", "-m", "-f", "-p", &port, &server]);
        let out =
            run_with_timeout(&mut cmd, NATDISCOVERY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        NatDiscovery::parse(output)
    }
}

/// The result of [`Host::natdiscovery`].
#[derive(Debug, Clone)]
pub struct NatDiscovery {
    /// The mapping class found, `None` when the tool did not conclude one.
    pub mapping: Option<Behaviour>,
    /// The filtering class found, `None` when the tool did not conclude one.
    pub filtering: Option<Behaviour>,
    /// The public (reflexive) addresses seen, in order, deduplicated.
    pub reflexive: Vec<String>,
    /// The tool's whole output, for failure messages.
    pub output: String,
}

impl NatDiscovery {
    fn parse(output: String) -> NatDiscovery {
        let mut mapping = None;
        let mut filtering = None;
        let mut reflexive: Vec<String> = Vec::new();
        for line in output.lines() {
            // "NAT with Endpoint Independent Mapping!" / "... Filtering!"
            if let Some(rest) = line.trim().strip_prefix("NAT with ") {
                let rest = rest.trim_end_matches('!');
                if let Some(words) = rest.strip_suffix(" Mapping") {
                    mapping = Behaviour::from_natdiscovery(words);
                } else if let Some(words) = rest.strip_suffix(" Filtering") {
                    filtering = Behaviour::from_natdiscovery(words);
                }
            }
            if let Some((_, addr)) = line.split_once("UDP reflexive addr: ") {
                let addr = addr.trim().to_owned();
                if !reflexive.contains(&addr) {
                    reflexive.push(addr);
                }
            }
        }
        NatDiscovery {
            mapping,
            filtering,
            reflexive,
            output,
        }
    }
}

/// A vpnhub running in the lab (see [`NatLab::start_hub_with`]).
#[derive(Debug, Clone)]
pub struct LabHub {
    /// `ip:port` it listens on, UDP and TCP (for vpnd's `hubs[].address`).
    pub address: String,
    /// Its public key (for vpnd's `hubs[].public_key`).
    pub public_key: String,
    /// Its index in [`NatLab`]'s hubs.
    slot: usize,
}

/// What the lab keeps of a hub to stop and start it again as the same hub.
#[derive(Debug)]
struct HubProc {
    name: String,
    config: std::path::PathBuf,
    address: String,
    proc: Option<Proc>,
    /// The logs of the processes that were killed, for failure messages.
    earlier_logs: String,
}

/// The lab: an inet namespace and whatever routers and hosts were added.
///
/// Fields drop in order: processes first, then the namespaces (which would stop them anyway).
#[derive(Debug)]
pub struct NatLab<'g> {
    hubs: Vec<HubProc>,
    procs: Vec<Proc>,
    inet: Arc<Netns>,
    namespaces: Vec<Arc<Netns>>,
    /// Hosts added so far to each router's LAN, by router index.
    lan_hosts: BTreeMap<u8, u8>,
    /// The last /24 used for an internet attachment.
    inet_subnets: u8,
    routers: u8,
    dir: tempfile::TempDir,
    guard: &'g TestGuard,
}

impl<'g> NatLab<'g> {
    /// Creates the inet namespace with the [`SERVER_IPS`] on its loopback.
    ///
    /// # Panics
    /// If a namespace or address cannot be set up.
    pub fn new(guard: &'g TestGuard) -> NatLab<'g> {
        let inet = guard.netns();
        for ip in SERVER_IPS {
            inet.ip_ok(["addr", "add", &format!("{ip}/32"), "dev", "lo"]);
        }
        inet.sysctl("net.ipv4.ip_forward", "1");
        NatLab {
            hubs: Vec::new(),
            procs: Vec::new(),
            inet: Arc::new(inet),
            namespaces: Vec::new(),
            lan_hosts: BTreeMap::new(),
            inet_subnets: 0,
            routers: 0,
            dir: tempfile::tempdir().expect("temporary directory"),
            guard,
        }
    }

    /// The inet namespace, where servers run (on [`SERVER_IPS`]).
    pub fn inet(&self) -> &Netns {
        &self.inet
    }

    /// Adds a router of type `nat` on the internet.
    pub fn router(&mut self, nat: NatType) -> Router {
        self.router_with(RouterSpec::new(nat))
    }

    /// Adds a carrier-grade NAT of type `nat` on the internet; put routers behind it with
    /// [`RouterSpec::behind`].
    pub fn cgnat(&mut self, nat: NatType) -> Router {
        self.router_with(RouterSpec::new(nat).carrier())
    }

    /// Adds a router as `spec` says.
    ///
    /// # Panics
    /// If more than 250 routers are added, or a command fails.
    pub fn router_with(&mut self, spec: RouterSpec) -> Router {
        self.routers = self
            .routers
            .checked_add(1)
            .filter(|&r| r <= 250)
            .expect("at most 250 routers");
        let index = self.routers;
        let ns = Arc::new(self.guard.netns());
        let (wan_ip, _gateway, wan_if, parent_public) = self.attach(&ns, spec.behind.as_ref());
        let lan_ip = if spec.carrier {
            Ipv4Addr::new(100, 64, index, 1)
        } else {
            Ipv4Addr::new(192, 168, index, 1)
        };
        ns.ip_ok(["link", "add", "lan0", "type", "bridge"]);
        ns.ip_ok(["addr", "add", &format!("{lan_ip}/24"), "dev", "lan0"]);
        ns.ip_ok(["link", "set", "lan0", "up"]);
        ns.sysctl("net.ipv4.ip_forward", "1");
        // With br_netfilter loaded, bridged LAN traffic would also pass the IP hooks (and
        // conntrack); a LAN switch does not NAT or filter, so turn that off where it exists.
        let _ = ns.exec(["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0"]);
        let cone_timeout = match spec.mapping_timeout {
            Some(t) => {
                let secs = t.as_secs().max(1).to_string();
                ns.sysctl("net.netfilter.nf_conntrack_udp_timeout", &secs);
                ns.sysctl("net.netfilter.nf_conntrack_udp_timeout_stream", &secs);
                t.as_secs().max(1)
            }
            None => 120,
        };
        let rules = ruleset(spec.nat, &wan_if, cone_timeout);
        let out = run_with_input(
            &mut ns.command(["nft", "-f", "-"]),
            rules.as_bytes(),
            crate::COMMAND_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "nft rules for a {} router: {}\n{rules}",
            spec.nat,
            String::from_utf8_lossy(&out.stderr)
        );
        self.namespaces.push(Arc::clone(&ns));
        Router {
            ns,
            nat: spec.nat,
            wan_ip,
            wan_if,
            public_ip: parent_public.unwrap_or(wan_ip),
            lan_ip,
            index,
        }
    }

    /// Adds a host on `router`'s LAN.
    pub fn host(&mut self, router: &Router) -> Host {
        self.add_host(Some(router))
    }

    /// Adds a host on the internet, without NAT or firewall.
    pub fn public_host(&mut self) -> Host {
        self.add_host(None)
    }

    fn add_host(&mut self, router: Option<&Router>) -> Host {
        let ns = Arc::new(self.guard.netns());
        let (ip, gateway, _if, parent_public) = self.attach(&ns, router);
        self.namespaces.push(Arc::clone(&ns));
        Host {
            ns,
            ip,
            gateway,
            public_ip: parent_public.unwrap_or(ip),
            router: router.cloned(),
        }
    }

    /// Links `ns` to the internet (its own /24) or to `router`'s LAN bridge and routes by
    /// default through it. Returns the address, the gateway, the interface and the parent's
    /// public address (`None` on the internet).
    fn attach(
        &mut self,
        ns: &Netns,
        router: Option<&Router>,
    ) -> (Ipv4Addr, Ipv4Addr, String, Option<Ipv4Addr>) {
        let (ip, gateway, ifname, public) = match router {
            None => {
                self.inet_subnets = self
                    .inet_subnets
                    .checked_add(1)
                    .filter(|&n| n <= 250)
                    .expect("at most 250 internet attachments");
                let n = self.inet_subnets;
                let (ip, gateway) = (Ipv4Addr::new(198, 18, n, 2), Ipv4Addr::new(198, 18, n, 1));
                let link = VethPair::link(
                    ns,
                    &self.inet,
                    &[&format!("{ip}/24")],
                    &[&format!("{gateway}/24")],
                );
                (ip, gateway, link.if_a, None)
            }
            Some(router) => {
                let count = self.lan_hosts.entry(router.index).or_insert(0);
                *count = count
                    .checked_add(1)
                    .filter(|&c| c <= 200)
                    .expect("at most 200 hosts per LAN");
                let [a, b, c, _] = router.lan_ip.octets();
                let ip = Ipv4Addr::new(a, b, c, 9 + *count);
                let link = VethPair::link(ns, &router.ns, &[&format!("{ip}/24")], &[]);
                router
                    .ns
                    .ip_ok(["link", "set", &link.if_b, "master", "lan0"]);
                (ip, router.lan_ip, link.if_a, Some(router.public_ip))
            }
        };
        ns.ip_ok(["route", "add", "default", "via", &gateway.to_string()]);
        (ip, gateway, ifname, public)
    }

    /// Starts coturn in the inet namespace as a STUN server on [`STUN1`] and [`STUN2`], port
    /// [`STUN_PORT`] and (for RFC 5780 CHANGE-REQUEST) `STUN_PORT + 1`, and waits until it
    /// listens. It ignores `/etc/turnserver.conf` (`-n`), whose Debian default turns RFC 5780
    /// off.
    ///
    /// # Panics
    /// If coturn does not listen within 10 s.
    pub fn start_coturn(&mut self) {
        let (s1, s2) = (STUN1.to_string(), STUN2.to_string());
        let port = STUN_PORT.to_string();
        let mut cmd = self.inet.command([
            "turnserver",
            "-n",
            "--stun-only",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "-L",
            &s1,
            "-L",
            &s2,
            "-p",
            &port,
            "--log-file",
            "stdout",
            "--simple-log",
        ]);
        cmd.arg("--pidfile")
            .arg(self.dir.path().join("turnserver.pid"))
            .stdin(Stdio::null());
        let coturn =
            Proc::spawn(&format!("{}-coturn", self.inet.name()), cmd).expect("coturn starts");
        self.procs.push(coturn);
        let alt = (STUN_PORT + 1).to_string();
        let wanted: Vec<String> = [&s1, &s2]
            .iter()
            .flat_map(|ip| [format!("{ip}:{port}"), format!("{ip}:{alt}")])
            .collect();
        let deadline = Instant::now() + COTURN_START;
        loop {
            let ss = self.inet.exec_ok(["ss", "-Hnul"]);
            if wanted.iter().all(|w| ss.contains(w.as_str())) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "coturn does not listen on {wanted:?} within {COTURN_START:?}: {ss}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a vpnhub in the inet namespace on [`HUB_IP`]:[`STUN_PORT`] (`store: memory`,
    /// `admission: allow_any`) and waits until it listens; returns its address and public key
    /// (for vpnd's `hubs`). See [`NatLab::start_hub_with`].
    ///
    /// # Panics
    /// As [`NatLab::start_hub_with`].
    pub fn start_hub(&mut self) -> (String, String) {
        let hub = self.start_hub_with(HUB_IP, "memory");
        (hub.address, hub.public_key)
    }

    /// Starts a vpnhub in the inet namespace on `ip`:[`STUN_PORT`] with its own new key,
    /// `admission: allow_any` and `store` (`memory`, or a URL such as
    /// [`NatLab::start_redis`]'s), logging a `stats` line every second (read with
    /// [`NatLab::hub_stats`]), and waits until it listens. It listens on that address rather
    /// than `0.0.0.0`: a wildcard socket would answer from whichever of the [`SERVER_IPS`]
    /// the kernel picks, which NATs drop as an unsolicited source.
    ///
    /// # Panics
    /// If the files cannot be written or vpnhub does not listen within 10 s.
    pub fn start_hub_with(&mut self, ip: Ipv4Addr, store: &str) -> LabHub {
        self.start_hub_configured(ip, store, "")
    }

    /// [`NatLab::start_hub`] serving its TCP service over TLS too, on [`HUB_IP`]:`tls_port`
    /// with a certificate for [`HUB_IP`] signed by a new CA (returned; vpnd trusts it with
    /// `hubs[].tls.ca_file`).
    ///
    /// # Panics
    /// As [`NatLab::start_hub_with`], or if openssl fails.
    pub fn start_tls_hub(&mut self, tls_port: u16) -> (LabHub, crate::tls::TestPki) {
        let pki = crate::tls::make_pki(self.dir.path(), &HUB_IP.to_string());
        let relay = format!(
            "relay:\n  tls:\n    listen: \"{HUB_IP}:{tls_port}\"\n    cert_file: \"{}\"\n    key_file: \"{}\"\n",
            pki.cert.display(),
            pki.key.display()
        );
        let hub = self.start_hub_configured(HUB_IP, "memory", &relay);
        (hub, pki)
    }

    /// [`NatLab::start_hub_with`] with `extra` appended to its configuration.
    fn start_hub_configured(&mut self, ip: Ipv4Addr, store: &str, extra: &str) -> LabHub {
        use std::os::unix::fs::PermissionsExt;
        let slot = self.hubs.len();
        let keys = crate::WgKeys::generate();
        let address = format!("{ip}:{STUN_PORT}");
        let key_file = self.dir.path().join(format!("hub{slot}.key"));
        let config = self.dir.path().join(format!("hub{slot}.yaml"));
        std::fs::write(&key_file, format!("{}\n", keys.private)).expect("hub key written");
        std::fs::write(
            &config,
            format!(
                "private_key_file: \"{}\"\nlisten: [\"{address}\"]\nadmission:\n  allow_any: true\nstore: \"{store}\"\n{extra}",
                key_file.display()
            ),
        )
        .expect("hub config written");
        for f in [&key_file, &config] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600))
                .expect("hub files private");
        }
        self.hubs.push(HubProc {
            name: format!("{}-vpnhub{slot}", self.inet.name()),
            config,
            address: address.clone(),
            proc: None,
            earlier_logs: String::new(),
        });
        let hub = LabHub {
            address,
            public_key: keys.public,
            slot,
        };
        self.restart_hub(&hub);
        hub
    }

    /// Kills `hub` by its PID (SIGKILL, as a crash or a power cut: no goodbye to anyone) and
    /// waits for it to exit. Its peers' presence records stay in Redis until they expire.
    ///
    /// # Panics
    /// If it does not exit within a few seconds.
    pub fn kill_hub(&mut self, hub: &LabHub) {
        let h = &mut self.hubs[hub.slot];
        if let Some(mut p) = h.proc.take() {
            let _ = p.signal(libc::SIGKILL);
            assert!(
                p.wait_exit(Duration::from_secs(5)).is_some(),
                "vpnhub {} survives SIGKILL",
                h.address
            );
            h.earlier_logs.push_str(&p.logs());
        }
    }

    /// (Re)starts `hub` with its key and configuration (a new process, so a new hub id and no
    /// registrations), killing it first if it runs, and waits until it listens.
    ///
    /// # Panics
    /// If vpnhub does not listen within 10 s.
    pub fn restart_hub(&mut self, hub: &LabHub) {
        self.kill_hub(hub);
        let h = &mut self.hubs[hub.slot];
        let binary = crate::cargo_binary("vpnhub");
        let mut cmd = self
            .inet
            .command([binary.as_os_str(), std::ffi::OsStr::new("--config")]);
        cmd.arg(&h.config)
            .args(["--stats-interval", "1"])
            .stdin(Stdio::null());
        h.proc = Some(Proc::spawn(&h.name, cmd).expect("vpnhub starts"));
        let address = h.address.clone();
        let deadline = Instant::now() + HUB_START;
        loop {
            let ss = self.inet.exec_ok(["ss", "-Hnul"]);
            if ss.contains(address.as_str()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "vpnhub does not listen on {address} within {HUB_START:?}: {ss}\n{}",
                self.hub_logs(hub)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `hub`'s counters from its last `stats` line (one a second; docs/hub.md "Counters"),
    /// e.g. `registered`, `lookups_remote`, `signals_to_remote`; empty before the first line
    /// or while it is killed.
    pub fn hub_stats(&self, hub: &LabHub) -> BTreeMap<String, u64> {
        let Some(p) = &self.hubs[hub.slot].proc else {
            return BTreeMap::new();
        };
        let logs = p.stderr();
        let Some(line) = logs.lines().rev().find_map(|l| l.split_once(" stats ")) else {
            return BTreeMap::new();
        };
        line.1
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
            .collect()
    }

    /// `hub`'s logs, of the processes killed before too, for failure messages.
    pub fn hub_logs(&self, hub: &LabHub) -> String {
        let h = &self.hubs[hub.slot];
        let now = h.proc.as_ref().map(Proc::logs).unwrap_or_default();
        format!("{}{now}", h.earlier_logs)
    }

    /// Starts redis-server in the inet namespace on its loopback (no persistence) and waits
    /// until it listens; returns the URL for [`NatLab::start_hub_with`]'s `store`.
    ///
    /// # Panics
    /// If redis-server cannot start or does not listen within 10 s.
    pub fn start_redis(&mut self) -> String {
        let port = REDIS_PORT.to_string();
        let mut cmd = self.inet.command([
            "redis-server",
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
        ]);
        cmd.arg("--dir").arg(self.dir.path()).stdin(Stdio::null());
        let redis =
            Proc::spawn(&format!("{}-redis", self.inet.name()), cmd).expect("redis-server starts");
        self.procs.push(redis);
        let wanted = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + REDIS_START;
        loop {
            let ss = self.inet.exec_ok(["ss", "-Hntl"]);
            if ss.contains(wanted.as_str()) {
                return format!("redis://{wanted}/0");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server does not listen on {wanted} within {REDIS_START:?}: {ss}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The two coturn endpoints as `ip:port` strings (for vpnd's `stun_servers`).
    pub fn stun_servers(&self) -> [String; 2] {
        [
            format!("{STUN1}:{STUN_PORT}"),
            format!("{STUN2}:{STUN_PORT}"),
        ]
    }
}

/// A host's second uplink (see [`NatLab::add_uplink`]).
#[derive(Debug, Clone)]
pub struct Uplink {
    /// The host's address on the second router's LAN.
    pub ip: Ipv4Addr,
    /// The second router's LAN address: the gateway to route by default through.
    pub gateway: Ipv4Addr,
    /// The address the world sees through this uplink.
    pub public_ip: Ipv4Addr,
}

impl NatLab<'_> {
    /// Gives `host` a second uplink on `router`'s LAN (an address there, no route beyond the
    /// LAN): a laptop on Wi-Fi and a phone tether at once. Its default route stays where it
    /// was until [`Host::route_default_via`] moves it.
    ///
    /// # Panics
    /// If more than 200 hosts join `router`'s LAN, or a command fails.
    pub fn add_uplink(&mut self, host: &Host, router: &Router) -> Uplink {
        let count = self.lan_hosts.entry(router.index).or_insert(0);
        *count = count
            .checked_add(1)
            .filter(|&c| c <= 200)
            .expect("at most 200 hosts per LAN");
        let [a, b, c, _] = router.lan_ip.octets();
        let ip = Ipv4Addr::new(a, b, c, 9 + *count);
        let link = VethPair::link(host.ns(), &router.ns, &[&format!("{ip}/24")], &[]);
        router
            .ns
            .ip_ok(["link", "set", &link.if_b, "master", "lan0"]);
        Uplink {
            ip,
            gateway: router.lan_ip,
            public_ip: router.public_ip,
        }
    }
}

impl Host {
    /// Moves the default route to `gateway` (`ip route replace default via`): routing only, no
    /// address changes, as when a host's preferred uplink changes.
    ///
    /// # Panics
    /// If `ip` fails.
    pub fn route_default_via(&self, gateway: Ipv4Addr) {
        self.ns
            .ip_ok(["route", "replace", "default", "via", &gateway.to_string()]);
    }
}

/// The nftables ruleset of a router of type `nat` with WAN interface `wan`; learnt cone
/// mappings expire after `cone_timeout` seconds. See [`NatType`] for why each behaves as it
/// does.
fn ruleset(nat: NatType, wan: &str, cone_timeout: u64) -> String {
    let masquerade = if nat == NatType::Symmetric {
        // A random port per flow, i.e. per remote address and port: endpoint-dependent.
        "masquerade random"
    } else {
        // Linux keeps the source port when free: endpoint-independent and port-preserving.
        "masquerade"
    };
    let mut sets = String::new();
    let mut prerouting = String::new();
    let mut learn = String::new();
    let mut forward_first = String::new();
    let mut forward_dnat = String::new();
    if nat.is_cone() {
        // mapped port -> host address . host port, learnt after source NAT, so `udp sport` is
        // the mapped port; the host's side comes from the flow's LAN-side tuple (the original
        // one for flows the host began, the reply one for flows let in by the dnat below).
        sets.push_str(&format!(
            "  map cone {{\n    type inet_service : ipv4_addr . inet_service\n    \
             flags dynamic,timeout\n    timeout {cone_timeout}s\n  }}\n"
        ));
        learn.push_str(&format!(
            "    oifname \"{wan}\" meta l4proto udp ct direction original \
             update @cone {{ udp sport : ct original ip saddr . ct original proto-src }}\n\
             \x20   oifname \"{wan}\" meta l4proto udp ct direction reply \
             update @cone {{ udp sport : ct reply ip saddr . ct reply proto-src }}\n"
        ));
        if nat == NatType::EimAdf {
            // mapped port . remote address: who may send to that mapping (any port of theirs).
            sets.push_str(&format!(
                "  set adf {{\n    type inet_service . ipv4_addr\n    \
                 flags dynamic,timeout\n    timeout {cone_timeout}s\n  }}\n"
            ));
            learn.push_str(&format!(
                "    oifname \"{wan}\" meta l4proto udp update @adf {{ udp sport . ip daddr }}\n"
            ));
            prerouting.push_str(&format!(
                "    iifname \"{wan}\" udp dport . ip saddr @adf dnat ip to udp dport map @cone\n"
            ));
        } else {
            prerouting.push_str(&format!(
                "    iifname \"{wan}\" udp dport @cone dnat ip to udp dport map @cone\n"
            ));
        }
        // What the prerouting dnat let in (only learnt mappings are dnatted).
        forward_dnat.push_str("    ct status dnat accept\n");
    }
    if nat == NatType::UdpBlocked {
        forward_first.push_str(&format!(
            "    oifname \"{wan}\" meta l4proto udp udp dport != 53 drop\n"
        ));
    }
    let learn_chain = if learn.is_empty() {
        String::new()
    } else {
        // Priority srcnat + 1: runs after masquerade rewrote the source.
        format!(
            "  chain learn {{\n    type filter hook postrouting priority srcnat + 1; policy accept;\n{learn}  }}\n"
        )
    };
    let prerouting_chain = if prerouting.is_empty() {
        String::new()
    } else {
        format!("  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{prerouting}  }}\n")
    };
    format!(
        "table ip lab {{\n\
         {sets}\
         {prerouting_chain}\
         \x20 chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         oifname \"{wan}\" {masquerade}\n  }}\n\
         {learn_chain}\
         \x20 chain forward {{\n    type filter hook forward priority filter; policy drop;\n\
         {forward_first}\
         \x20   ct state established,related accept\n\
         {forward_dnat}\
         \x20   iifname != \"{wan}\" accept\n  }}\n\
         \x20 chain input {{\n    type filter hook input priority filter; policy accept;\n    \
         iifname \"{wan}\" ct state established,related accept\n    \
         iifname \"{wan}\" drop\n  }}\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_natdiscovery_output() {
        let out = "\n-= Mapping Behavior Discovery =-\n\
            0: : IPv4. UDP reflexive addr: 198.18.1.2:46965\n\
            NAT with Endpoint Independent Mapping!\n\
            STUN receive timeout..\n\
            0: : IPv4. UDP reflexive addr: 198.18.1.2:57494\n\
            NAT with Address and Port Dependent Filtering!\n";
        let d = NatDiscovery::parse(out.to_owned());
        assert_eq!(d.mapping, Some(Behaviour::EndpointIndependent));
        assert_eq!(d.filtering, Some(Behaviour::AddressAndPortDependent));
        assert_eq!(d.reflexive, ["198.18.1.2:46965", "198.18.1.2:57494"]);
    }

    #[test]
    fn rulesets_differ_as_documented() {
        let apdf = ruleset(NatType::EimApdf, "wan", 30);
        assert!(apdf.contains("oifname \"wan\" masquerade\n"), "{apdf}");
        assert!(!apdf.contains("dnat"), "{apdf}");
        let sym = ruleset(NatType::Symmetric, "wan", 30);
        assert!(sym.contains("masquerade random"), "{sym}");
        let eif = ruleset(NatType::EimEif, "wan", 30);
        assert!(eif.contains("udp dport @cone dnat"), "{eif}");
        let adf = ruleset(NatType::EimAdf, "wan", 10);
        assert!(adf.contains("udp dport . ip saddr @adf dnat"), "{adf}");
        assert!(adf.contains("timeout 10s"), "{adf}");
        let blocked = ruleset(NatType::UdpBlocked, "wan", 30);
        assert!(blocked.contains("udp dport != 53 drop"), "{blocked}");
    }
}
