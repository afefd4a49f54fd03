//! UDP for the media plane: one muxed port shared by every peer, or a port per peer from a
//! range. Either way each peer receives its datagrams on a queue of its own and sends on a
//! shared socket handle.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use str0m::ice::StunMessage;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::warn;

/// Largest datagram read.
const MAX_DATAGRAM: usize = 2048;
/// Receive buffer asked for the muxed socket, which every peer shares: about 14,000 full-size
/// datagrams (the kernel counts about 2.3 KiB for each), 180 ms of 300 broadcasts at 2.5
/// Mbit/s, so that a moment without CPU for the reader loses nothing.
const MUX_RECV_BUFFER: usize = 32 << 20;
/// Receive buffer asked for a peer's own socket.
const PEER_RECV_BUFFER: usize = 1 << 20;

/// A datagram for one peer.
pub(crate) struct Datagram {
    pub source: SocketAddr,
    pub data: Vec<u8>,
    pub at: Instant,
}

/// Where a peer's datagrams go.
pub(crate) type Inbox = mpsc::Sender<Datagram>;

/// How the media plane uses UDP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpMode {
    /// Every peer on one port (0: any free port).
    Muxed(u16),
    /// A port per peer from this inclusive range.
    Range(u16, u16),
}

/// The media plane's UDP.
pub(crate) enum Udp {
    Muxed(Arc<Mux>),
    Range { ip: IpAddr, lo: u16, hi: u16 },
}

/// A peer's place on the network; dropping it stops its datagrams.
pub(crate) struct Endpoint {
    /// Sends the peer's datagrams.
    pub socket: Arc<UdpSocket>,
    /// The local port (for the peer's candidates).
    pub port: u16,
    reader: Option<AbortHandle>,
    mux: Option<(Arc<Mux>, u64)>,
}

impl Endpoint {
    /// Routes STUN for `ufrag` (after an ICE restart) to this peer too.
    pub fn add_ufrag(&self, ufrag: &str) {
        if let Some((mux, peer)) = &self.mux {
            mux.add_ufrag(*peer, ufrag);
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(r) = &self.reader {
            r.abort();
        }
        if let Some((mux, peer)) = &self.mux {
            mux.remove(*peer);
        }
    }
}

impl Udp {
    /// Binds the UDP of `mode` on `ip`.
    pub async fn bind(ip: IpAddr, mode: &UdpMode, unrouted: Counter) -> io::Result<Udp> {
        Ok(match *mode {
            UdpMode::Muxed(port) => {
                Udp::Muxed(Mux::bind(SocketAddr::new(ip, port), unrouted).await?)
            }
            UdpMode::Range(lo, hi) => Udp::Range { ip, lo, hi },
        })
    }

    /// The muxed port, if there is one.
    pub fn muxed_port(&self) -> Option<u16> {
        match self {
            Udp::Muxed(m) => Some(m.port),
            Udp::Range { .. } => None,
        }
    }

    /// An endpoint for peer `peer` whose local ICE user fragment is `ufrag`.
    pub async fn endpoint(&self, peer: u64, ufrag: &str, inbox: Inbox) -> io::Result<Endpoint> {
        match self {
            Udp::Muxed(mux) => {
                mux.insert(peer, ufrag, inbox);
                Ok(Endpoint {
                    socket: mux.socket.clone(),
                    port: mux.port,
                    reader: None,
                    mux: Some((mux.clone(), peer)),
                })
            }
            Udp::Range { ip, lo, hi } => {
                let socket = bind_in_range(*ip, *lo, *hi)?;
                let port = socket.local_addr()?.port();
                let socket = Arc::new(socket);
                let reader = tokio::spawn(read_into(socket.clone(), inbox));
                Ok(Endpoint {
                    socket,
                    port,
                    reader: Some(reader.abort_handle()),
                    mux: None,
                })
            }
        }
    }
}

fn bind_in_range(ip: IpAddr, lo: u16, hi: u16) -> io::Result<UdpSocket> {
    // Start at a random port so that consecutive peers do not all probe the same ones.
    let span = u32::from(hi - lo) + 1;
    let start = (uuid::Uuid::new_v4().as_u128() % u128::from(span)) as u32;
    for i in 0..span {
        let port = lo + ((start + i) % span) as u16;
        if let Ok((s, _)) = bind(SocketAddr::new(ip, port), PEER_RECV_BUFFER) {
            return Ok(s);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free UDP port in {lo}-{hi}"),
    ))
}

/// Binds a UDP socket whose receive buffer is about `buffer` bytes, or as much as the kernel
/// allows (`net.core.rmem_max`); returns it with the size granted.
fn bind(addr: SocketAddr, buffer: usize) -> io::Result<(UdpSocket, usize)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works, it only drops sooner under load.
    let _ = socket.set_recv_buffer_size(buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let granted = socket.recv_buffer_size()?;
    Ok((UdpSocket::from_std(socket.into())?, granted))
}

async fn read_into(socket: Arc<UdpSocket>, inbox: Inbox) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, source) = match socket.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) => {
                // ICMP errors surface here on some systems; they do not end the socket.
                tracing::debug!(error = %e, "UDP receive failed");
                continue;
            }
        };
        let d = Datagram {
            source,
            data: buf[..n].to_vec(),
            at: Instant::now(),
        };
        if let Err(mpsc::error::TrySendError::Closed(_)) = inbox.try_send(d) {
            return;
        }
    }
}

/// One socket shared by every peer: datagrams are routed by source address, and new
/// addresses by the ICE user fragment of their STUN requests.
pub(crate) struct Mux {
    socket: Arc<UdpSocket>,
    port: u16,
    routes: Mutex<Routes>,
    unrouted: Counter,
}

#[derive(Default)]
struct Routes {
    by_addr: HashMap<SocketAddr, (u64, Inbox)>,
    by_ufrag: HashMap<String, (u64, Inbox)>,
}

impl Mux {
    async fn bind(addr: SocketAddr, unrouted: Counter) -> io::Result<Arc<Mux>> {
        let (socket, granted) = bind(addr, MUX_RECV_BUFFER)?;
        // Linux grants at most twice `net.core.rmem_max` (half of it for bookkeeping).
        if granted < MUX_RECV_BUFFER {
            warn!(
                granted_kib = granted / 1024,
                wanted_kib = MUX_RECV_BUFFER / 1024,
                "the kernel limits the media socket's receive buffer, so bursts from many \
                 participants may drop packets; raise it with `sysctl -w net.core.rmem_max={}`",
                MUX_RECV_BUFFER / 2
            );
        }
        let socket = Arc::new(socket);
        let port = socket.local_addr()?.port();
        let mux = Arc::new(Mux {
            socket,
            port,
            routes: Mutex::new(Routes::default()),
            unrouted,
        });
        tokio::spawn(mux.clone().run());
        Ok(mux)
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().expect("UDP routes are never poisoned")
    }

    fn insert(&self, peer: u64, ufrag: &str, inbox: Inbox) {
        self.routes()
            .by_ufrag
            .insert(ufrag.to_owned(), (peer, inbox));
    }

    fn add_ufrag(&self, peer: u64, ufrag: &str) {
        let mut routes = self.routes();
        let inbox = routes
            .by_ufrag
            .values()
            .find(|(p, _)| *p == peer)
            .map(|(_, i)| i.clone());
        if let Some(inbox) = inbox {
            routes.by_ufrag.insert(ufrag.to_owned(), (peer, inbox));
        }
    }

    fn remove(&self, peer: u64) {
        let mut routes = self.routes();
        routes.by_addr.retain(|_, (p, _)| *p != peer);
        routes.by_ufrag.retain(|_, (p, _)| *p != peer);
    }

    async fn run(self: Arc<Self>) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (n, source) = match self.socket.recv_from(&mut buf).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            };
            let data = &buf[..n];
            let Some(inbox) = self.route(source, data) else {
                self.unrouted.inc();
                continue;
            };
            let d = Datagram {
                source,
                data: data.to_vec(),
                at: Instant::now(),
            };
            match inbox.try_send(d) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.unrouted.inc();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.routes().by_addr.remove(&source);
                }
            }
        }
    }

    fn route(&self, source: SocketAddr, data: &[u8]) -> Option<Inbox> {
        let mut routes = self.routes();
        if let Some((_, inbox)) = routes.by_addr.get(&source) {
            return Some(inbox.clone());
        }
        // A new address: only a STUN request naming one of our user fragments opens a route.
        let stun = StunMessage::parse(data).ok()?;
        let (local, _) = stun.split_username()?;
        let (peer, inbox) = routes.by_ufrag.get(local)?.clone();
        if routes.by_addr.len() > 100_000 {
            warn!("too many UDP routes; dropping new ones");
            return None;
        }
        routes.by_addr.insert(source, (peer, inbox.clone()));
        Some(inbox)
    }
}
