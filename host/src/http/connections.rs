//! Connection limits for the HTTPS listener: every connection has a
//! deadline for each phase of its life, and the number of connections is
//! capped without locking well-behaved clients out.
//!
//! Without them one unauthenticated client holding idle TLS connections
//! (or trickling a header line every few seconds) took every file
//! descriptor. What we do is what nginx and Go's `net/http` do:
//!
//! - **Deadlines per phase** (Go's `ReadHeaderTimeout`/`IdleTimeout`,
//!   nginx's `client_header_timeout`/`keepalive_timeout`): the TLS
//!   handshake must finish within `handshake_timeout` of the accept; the
//!   first request's head within `header_read_timeout` of the handshake
//!   (this also bounds hyper's HTTP/2-preface sniffing, which has no
//!   timeout of its own); between requests a connection may sit idle for
//!   `idle_timeout`, and on HTTP/1 the next request's head must then
//!   arrive within `header_read_timeout` of its first byte (so idle
//!   keep-alive can be longer than the header bound, as in Go). While a
//!   request is being handled there is no deadline: handlers bound
//!   themselves (long-polls end at their `wait`). The deadlines live in
//!   the socket wrapper ([`Guarded`]), below TLS, so they hold in every
//!   phase, for reads and for writes (a client that never reads its
//!   response is bounded too), and for HTTP/1 and HTTP/2 alike. hyper's
//!   own `header_read_timeout` is left off: it starts when hyper waits
//!   for a head, idle or not, and would cut idle keep-alive to the
//!   header bound.
//! - **A cap on open connections** kept below the open-files limit
//!   (raised to its hard limit at start, as Go does). At the cap a new
//!   connection makes room by shedding, oldest first, a connection that
//!   has not completed a request yet and has none in flight (still in its
//!   handshake or its first head: what a flood consists of); failing that
//!   the longest-idle keep-alive connection (nginx's "reusable
//!   connections": the client just reconnects); failing that a connection
//!   whose first request is still in flight. Only when every connection
//!   is busy with a request on a proven connection is the newcomer
//!   refused. A flood of idle or slow connections therefore only ever
//!   pushes out other flood connections and idle keep-alives, and a
//!   client that connects and sends its request promptly is served.
//! - **Logged when they bite**, at most once per [`REPORT_EVERY`], with
//!   counts (handshake and header timeouts, shed and refused
//!   connections, open and maximum); never a header, never a peer's data.
//!   Idle closes are normal keep-alive hygiene and only counted at debug.
//! - **Memory given back after a burst**: per-connection buffers are
//!   bounded ([`MAX_BUF_SIZE`]), and when many connections went away since
//!   the last report the heap is trimmed (`malloc_trim`): measured, glibc
//!   otherwise kept a burst of 3000 connections' memory (30 MB before,
//!   86 MB during) for good.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::ConnectionLimits;

/// How often, at most, the limits that bit are logged.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Open files kept out of the connection budget: the store (SQLite files
/// or the PostgreSQL pool), the agents driver's connections to agents,
/// logs, and the listener itself.
pub const RESERVED_FILES: u64 = 256;

/// The connection cap when `--max-connections` is not given (lowered to
/// fit the open-files limit).
pub const DEFAULT_MAX_CONNECTIONS: u64 = 1024;

/// hyper's HTTP/1 read buffer per connection, which bounds a request
/// head (default ~400 KiB; a head larger than this gets 431).
pub const MAX_BUF_SIZE: usize = 64 * 1024;

/// After this many connections closed between two reports, freed heap
/// memory is handed back to the system.
const TRIM_AFTER: usize = 64;

/// Raises the soft open-files limit to the hard one and returns how many
/// connections fit under it after [`RESERVED_FILES`].
pub fn connection_budget() -> io::Result<u64> {
    let files = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok(files.saturating_sub(RESERVED_FILES))
}

/// The phase a connection is in, which decides its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// TLS handshake, from the accept.
    Handshake,
    /// Reading a request head: the first one from the handshake, a later
    /// HTTP/1 one from its first byte.
    Head,
    /// At least one request being handled.
    Active,
    /// Between requests (keep-alive).
    Idle,
}

/// What the shedding policy sees of a connection.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    accepted: Instant,
    phase: Phase,
    /// When the phase began.
    since: Instant,
    /// Has completed at least one request.
    proven: bool,
}

#[derive(Debug)]
struct ConnState {
    phase: Phase,
    since: Instant,
    in_flight: usize,
    proven: bool,
    /// HTTP/2 (ALPN): bytes between requests are frames (pings, window
    /// updates), not the start of a head.
    h2: bool,
}

/// One open connection, shared by its socket wrapper, its service wrapper
/// and the registry.
#[derive(Debug)]
struct Conn {
    accepted: Instant,
    state: Mutex<ConnState>,
    /// Set when another connection pushed this one out.
    shed: AtomicBool,
    /// Wakes the connection's task so it notices it was shed.
    waker: AtomicWaker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state stays consistent whatever a panicking holder did: every
    // update is a plain assignment.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Conn {
    fn new(now: Instant) -> Self {
        Conn {
            accepted: now,
            state: Mutex::new(ConnState {
                phase: Phase::Handshake,
                since: now,
                in_flight: 0,
                proven: false,
                h2: false,
            }),
            shed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        let s = lock(&self.state);
        Snapshot {
            accepted: self.accepted,
            phase: s.phase,
            since: s.since,
            proven: s.proven,
        }
    }

    fn handshake_done(&self, h2: bool) {
        let mut s = lock(&self.state);
        s.phase = Phase::Head;
        s.since = Instant::now();
        s.h2 = h2;
    }

    /// Bytes arrived: on an idle HTTP/1 connection that starts a head.
    fn on_bytes(&self) {
        let mut s = lock(&self.state);
        if s.phase == Phase::Idle && !s.h2 {
            s.phase = Phase::Head;
            s.since = Instant::now();
        }
    }

    fn request_started(&self) {
        let mut s = lock(&self.state);
        s.in_flight += 1;
        s.phase = Phase::Active;
    }

    fn request_ended(&self) {
        let mut s = lock(&self.state);
        s.in_flight = s.in_flight.saturating_sub(1);
        s.proven = true;
        if s.in_flight == 0 {
            s.phase = Phase::Idle;
            s.since = Instant::now();
        }
    }

    fn shed(&self) {
        self.shed.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// When the current phase runs out, and which limit that is.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Close)> {
        let s = lock(&self.state);
        match s.phase {
            Phase::Handshake => Some((s.since + limits.handshake_timeout, Close::Handshake)),
            Phase::Head => Some((s.since + limits.header_read_timeout, Close::Head)),
            Phase::Idle => Some((s.since + limits.idle_timeout, Close::Idle)),
            Phase::Active => None,
        }
    }
}

/// Why a connection was closed by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Handshake,
    Head,
    Idle,
    Shed,
}

impl Close {
    fn error(self) -> io::Error {
        let what = match self {
            Close::Handshake => "TLS handshake timed out",
            Close::Head => "request head timed out",
            Close::Idle => "idle connection timed out",
            Close::Shed => "connection shed to make room for a new one",
        };
        io::Error::new(io::ErrorKind::TimedOut, what)
    }
}

/// Which connection to shed to make room, or `None` to refuse the
/// newcomer (see the module doc for the order and why).
fn pick_victim<K: Copy>(conns: impl IntoIterator<Item = (K, Snapshot)>) -> Option<K> {
    // (class, age key): lower class first, then the older key.
    let mut best: Option<(u8, Instant, K)> = None;
    for (key, c) in conns {
        let candidate = match (c.proven, c.phase) {
            (false, Phase::Handshake | Phase::Head) => Some((0, c.accepted)),
            (true, Phase::Idle | Phase::Head) => Some((1, c.since)),
            (false, Phase::Active | Phase::Idle) => Some((2, c.accepted)),
            (true, Phase::Active | Phase::Handshake) => None,
        };
        if let Some((class, at)) = candidate
            && best.is_none_or(|(bc, bat, _)| (class, at) < (bc, bat))
        {
            best = Some((class, at, key));
        }
    }
    best.map(|(_, _, k)| k)
}

/// Counters of limits that bit since the last report.
#[derive(Debug, Default)]
struct Counts {
    handshake: AtomicU64,
    head: AtomicU64,
    idle: AtomicU64,
    shed: AtomicU64,
    refused: AtomicU64,
}

impl Counts {
    fn add(&self, close: Close) {
        let c = match close {
            Close::Handshake => &self.handshake,
            Close::Head => &self.head,
            Close::Idle => &self.idle,
            Close::Shed => &self.shed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Shared {
    limits: ConnectionLimits,
    max: usize,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    counts: Counts,
    /// The most connections open at once since the last report.
    peak: AtomicUsize,
}

impl Shared {
    /// Registers a new connection, shedding another if at the cap;
    /// `None` when there is no room.
    fn admit(&self) -> Option<(u64, Arc<Conn>)> {
        let now = Instant::now();
        let mut conns = lock(&self.conns);
        if conns.len() >= self.max {
            let victim = pick_victim(conns.iter().map(|(id, c)| (*id, c.snapshot())));
            match victim.and_then(|id| conns.remove(&id)) {
                Some(v) => {
                    v.shed();
                    self.counts.add(Close::Shed);
                }
                None => {
                    self.counts.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new(now));
        conns.insert(id, conn.clone());
        self.peak.fetch_max(conns.len(), Ordering::Relaxed);
        Some((id, conn))
    }

    fn release(&self, id: u64) {
        lock(&self.conns).remove(&id);
    }

    fn open(&self) -> usize {
        lock(&self.conns).len()
    }

    /// Logs what bit since the last call, if anything did.
    fn report(&self) {
        let take = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
        let handshake = take(&self.counts.handshake);
        let head = take(&self.counts.head);
        let idle = take(&self.counts.idle);
        let shed = take(&self.counts.shed);
        let refused = take(&self.counts.refused);
        let open = self.open();
        let peak = self.peak.swap(open, Ordering::Relaxed).max(open);
        if peak >= open + TRIM_AFTER {
            tokio::task::spawn_blocking(release_memory);
        }
        if handshake + head + shed + refused > 0 {
            tracing::warn!(
                handshake_timeouts = handshake,
                header_timeouts = head,
                shed,
                refused,
                idle_closed = idle,
                open,
                peak,
                max_connections = self.max,
                "connection limits bit: slow or idle clients were disconnected"
            );
        } else if idle > 0 {
            tracing::debug!(idle_closed = idle, open, "idle connections closed");
        }
    }
}

/// Hands the heap's free pages back to the system: glibc keeps them in
/// its per-thread arenas, so a burst of connections would leave the
/// process at its peak size.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_memory() {
    // SAFETY: malloc_trim takes no pointers and only works on the
    // allocator's own free lists, under its own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_memory() {}

/// The listener's acceptor: admits a connection under the cap, wraps its
/// socket in [`Guarded`], runs the TLS handshake, and wraps the
/// connection's service to see its requests start and end.
#[derive(Clone)]
pub struct Acceptor {
    shared: Arc<Shared>,
    tls: TlsAcceptor,
}

impl Acceptor {
    /// An acceptor for at most `max` connections. Spawns the task that
    /// logs the limits that bit; it ends when the acceptor's last clone
    /// (the server and its connections) is gone.
    pub fn new(tls: Arc<rustls::ServerConfig>, limits: ConnectionLimits, max: usize) -> Self {
        let shared = Arc::new(Shared {
            limits,
            max: max.max(1),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            counts: Counts::default(),
            peak: AtomicUsize::new(0),
        });
        tokio::spawn(report_loop(Arc::downgrade(&shared)));
        Acceptor {
            shared,
            tls: TlsAcceptor::from(tls),
        }
    }
}

async fn report_loop(shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match shared.upgrade() {
            Some(s) => s.report(),
            None => return,
        }
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for Acceptor {
    type Stream = TlsStream<Guarded<TcpStream>>;
    type Service = Tracked<S>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let shared = self.shared.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let Some((id, conn)) = shared.admit() else {
                // Dropping the socket closes it: every slot is busy.
                return Err(io::Error::other("connection cap reached"));
            };
            let io = Guarded {
                io: stream,
                slot: Slot {
                    id,
                    shared: shared.clone(),
                },
                conn: conn.clone(),
                sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
                armed: None,
                closed: None,
            };
            // Without TCP_NODELAY the TLS 1.3 session tickets sent after
            // the handshake sit behind the client's delayed ACK (~40 ms
            // per new connection, i.e. on every `terraform` command's
            // first call).
            io.io.set_nodelay(true)?;
            let tls = tls.accept(io).await?;
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            conn.handshake_done(h2);
            Ok((
                tls,
                Tracked {
                    inner: service,
                    conn,
                },
            ))
        })
    }
}

/// Frees the connection's place under the cap when its socket goes.
struct Slot {
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.release(self.id);
    }
}

/// A socket that fails its reads and writes once its connection's phase
/// deadline passes or it was shed, which ends the connection wherever it
/// is (handshake, head, idle, or a response the client does not read).
pub struct Guarded<IO> {
    io: IO,
    slot: Slot,
    conn: Arc<Conn>,
    sleep: Pin<Box<Sleep>>,
    /// The deadline `sleep` is set to.
    armed: Option<Instant>,
    /// Why a limit closed it (counted once).
    closed: Option<Close>,
}

impl<IO> Guarded<IO> {
    /// `Ready` with the error to fail with once a limit closed the
    /// connection; otherwise arranges to be woken when one does.
    fn limit(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if let Some(c) = self.closed {
            return Poll::Ready(c.error());
        }
        self.conn.waker.register(cx.waker());
        if self.conn.shed.load(Ordering::Acquire) {
            // Counted by the connection that shed it.
            self.closed = Some(Close::Shed);
            return Poll::Ready(Close::Shed.error());
        }
        let Some((at, why)) = self.conn.deadline(&self.slot.shared.limits) else {
            return Poll::Pending;
        };
        if self.armed != Some(at) {
            self.sleep.as_mut().reset(at);
            self.armed = Some(at);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.closed = Some(why);
                self.slot.shared.counts.add(why);
                Poll::Ready(why.error())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if (this.closed.is_some() || this.conn.shed.load(Ordering::Acquire))
            && let Poll::Ready(e) = this.limit(cx)
        {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.conn.on_bytes();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.limit(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if (this.closed.is_some() || this.conn.shed.load(Ordering::Acquire))
            && let Poll::Ready(e) = this.limit(cx)
        {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut this.io).poll_write(cx, data) {
            Poll::Pending => match this.limit(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            ready => ready,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => match this.limit(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The connection's service: marks each request's start and end, which
/// moves the connection between its phases.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    conn: Arc<Conn>,
}

/// Ends a request when dropped, whether it finished or was cancelled.
struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

impl<S, R> tower::Service<R> for Tracked<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.conn.request_started();
        let in_flight = InFlight(self.conn.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let out = fut.await;
            drop(in_flight);
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(accepted: u64, phase: Phase, since: u64, proven: bool) -> Snapshot {
        let t0 = Instant::now();
        Snapshot {
            accepted: t0 + Duration::from_secs(accepted),
            phase,
            since: t0 + Duration::from_secs(since),
            proven,
        }
    }

    #[test]
    fn sheds_the_oldest_connection_that_never_completed_a_request_first() {
        let conns = [
            ("busy", snap(0, Phase::Active, 1, true)),
            ("idle keep-alive", snap(1, Phase::Idle, 2, true)),
            ("newer handshake", snap(5, Phase::Handshake, 5, false)),
            ("older head", snap(3, Phase::Head, 4, false)),
            ("first request in flight", snap(2, Phase::Active, 2, false)),
        ];
        assert_eq!(pick_victim(conns), Some("older head"));
    }

    #[test]
    fn then_the_longest_idle_keep_alive_then_an_unproven_request() {
        let idle = [
            ("busy", snap(0, Phase::Active, 1, true)),
            ("idle since 9", snap(1, Phase::Idle, 9, true)),
            ("idle since 4", snap(2, Phase::Idle, 4, true)),
            ("first request in flight", snap(0, Phase::Active, 0, false)),
        ];
        assert_eq!(pick_victim(idle), Some("idle since 4"));
        let unproven = [
            ("busy", snap(0, Phase::Active, 1, true)),
            ("first request in flight", snap(3, Phase::Active, 3, false)),
        ];
        assert_eq!(pick_victim(unproven), Some("first request in flight"));
    }

    #[test]
    fn refuses_the_newcomer_when_every_connection_is_busy_and_proven() {
        let busy = [
            (1, snap(0, Phase::Active, 1, true)),
            (2, snap(1, Phase::Active, 2, true)),
        ];
        assert_eq!(pick_victim(busy), None);
    }

    fn shared(max: usize) -> Shared {
        Shared {
            limits: ConnectionLimits::default(),
            max,
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            counts: Counts::default(),
            peak: AtomicUsize::new(0),
        }
    }

    #[tokio::test]
    async fn admission_at_the_cap_sheds_the_flood_and_keeps_busy_clients() {
        let s = shared(2);
        let (_, good) = s.admit().expect("room");
        good.handshake_done(false);
        good.request_started();
        let (_, flood) = s.admit().expect("room");
        // At the cap: the flood connection (still in its handshake) goes.
        let (_, newcomer) = s.admit().expect("room made by shedding");
        assert!(flood.shed.load(Ordering::Acquire));
        assert!(!good.shed.load(Ordering::Acquire));
        assert_eq!(s.open(), 2);
        // Both left are busy on a proven connection: refuse the next.
        newcomer.handshake_done(false);
        newcomer.request_started();
        newcomer.request_ended();
        newcomer.request_started();
        good.request_ended();
        good.request_started();
        assert!(s.admit().is_none());
        assert_eq!(s.counts.shed.load(Ordering::Relaxed), 1);
        assert_eq!(s.counts.refused.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn idle_http1_bytes_start_the_header_deadline_but_http2_frames_do_not() {
        let limits = ConnectionLimits::default();
        for (h2, phase) in [(false, Phase::Head), (true, Phase::Idle)] {
            let c = Conn::new(Instant::now());
            c.handshake_done(h2);
            assert_eq!(c.deadline(&limits).map(|(_, w)| w), Some(Close::Head));
            c.request_started();
            assert_eq!(c.deadline(&limits), None, "no deadline while handling");
            c.request_ended();
            assert_eq!(c.deadline(&limits).map(|(_, w)| w), Some(Close::Idle));
            c.on_bytes();
            assert_eq!(lock(&c.state).phase, phase);
        }
    }
}
