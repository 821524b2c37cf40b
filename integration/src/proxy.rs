//! A TCP proxy on a loopback port in front of a server (a replica, in the throttle tests), to make
//! that server unreachable in the middle of a run without touching the shared server itself:
//! [`Proxy::set`] with [`Link::Refuse`] (a server that went away: connection refused, open
//! connections cut), [`Link::Stall`] (a network partition: connections stay open, nothing
//! passes, new ones are accepted and never answered) or [`Link::Reset`] (a restart: every
//! connection cut, new ones closed at once, until [`Link::Forward`] again). Also the DSN surgery to route a run
//! through it ([`address`], [`with_port`]).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Bytes flow both ways.
    Forward,
    /// Connections stay open but nothing passes, and new ones are accepted and ignored: a host
    /// that stopped answering.
    Stall,
    /// The port is closed and every connection through it is cut: connection refused.
    Refuse,
    /// Every open connection is cut, and new ones are closed as soon as they are accepted, for
    /// as long as this is set; [`Link::Forward`] again lets new connections through: a server
    /// restart as its clients see it.
    Reset,
}

/// A TCP forwarder on `127.0.0.1:`[`Proxy::port`] to an upstream address; stops when dropped.
pub struct Proxy {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    link: watch::Sender<Link>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Start forwarding to `upstream` ([`Link::Forward`]).
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (link, rx) = watch::channel(Link::Forward);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            let mut closing = rx.clone();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut down, _)) = accepted else { continue };
                        let mut rx = rx.clone();
                        conns.spawn(async move {
                            let cut = |l: &Link| matches!(l, Link::Refuse | Link::Reset);
                            let now = *rx.borrow();
                            if now == Link::Forward {
                                let Ok(mut up) = TcpStream::connect(upstream).await else { return };
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut down, &mut up) => return,
                                    _ = rx.wait_for(|l| *l != Link::Forward) => {}
                                }
                                let _ = rx.wait_for(cut).await;
                            } else if now != Link::Reset {
                                let _ = rx.wait_for(cut).await;
                            }
                        });
                    }
                    _ = closing.wait_for(|l| *l == Link::Refuse) => break,
                }
            }
            drop(listener);
            while conns.join_next().await.is_some() {}
        });
        Proxy { port, link, task }
    }

    /// Forward, stall or refuse from now on.
    pub fn set(&self, l: Link) {
        self.link.send_replace(l);
    }

    /// `dsn` routed through this proxy: its host and port replaced by `127.0.0.1:`[`Proxy::port`].
    pub fn route(&self, dsn: &str) -> String {
        with_port(dsn, self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `dsn` (`scheme://user[:password]@host:port/database…`) with its host and port replaced by
/// `127.0.0.1:port`.
pub fn with_port(dsn: &str, port: u16) -> String {
    let (scheme_user, rest) = dsn.split_once('@').expect("DSN with user@host");
    let (_, path) = rest.split_once('/').expect("DSN with a database");
    format!("{scheme_user}@127.0.0.1:{port}/{path}")
}

/// The `IP:port` of `dsn` (`scheme://user[:password]@IP:port[/…]`); panics on a host name.
pub fn address(dsn: &str) -> SocketAddr {
    let rest = dsn.split_once('@').expect("DSN with user@host").1;
    let hostport = rest.split_once('/').map_or(rest, |(h, _)| h);
    hostport.parse().unwrap_or_else(|e| panic!("{hostport}: {e} (the tests need an IP:port DSN)"))
}

/// A loopback port nothing listens on (bound, noted and closed), for a server that is down.
pub fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
