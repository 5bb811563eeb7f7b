//! Starts keyed actors on first use and keeps one per key. Actors are spread
//! over a few arbiter threads by key, so they shard the way the design
//! describes. Every `sweep` the registry asks actors idle for longer than
//! `idle_after` to stop (they refuse while they hold work, e.g. stock
//! reservations); an actor that died (a panic ends its task and closes its
//! mailbox) is replaced on the next lookup by a fresh one loaded from sled.

use actix::dev::ToEnvelope;
use actix::prelude::*;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Asks an idle actor to stop; it answers `true` if it did.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Shutdown;

/// Returns the actor for a key, starting it if needed.
pub struct Lookup<A>(pub u64, PhantomData<A>);

impl<A: Actor> Lookup<A> {
    pub fn new(key: u64) -> Self {
        Self(key, PhantomData)
    }
}

impl<A: Actor> Message for Lookup<A> {
    type Result = Addr<A>;
}

/// Stops the registry and lets go of its actors (server shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRegistry;

/// How many actors are alive (for tests and metrics).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct LiveCount;

type Factory<A> = Arc<dyn Fn(u64, &ArbiterHandle) -> Addr<A> + Send + Sync>;

pub struct Registry<A: Actor> {
    actors: HashMap<u64, (Addr<A>, Instant)>,
    arbiters: Vec<ArbiterHandle>,
    factory: Factory<A>,
    idle_after: Duration,
    sweep_every: Duration,
}

impl<A> Registry<A>
where
    A: Actor<Context = Context<A>> + Handler<Shutdown>,
{
    pub fn new(
        arbiters: Vec<ArbiterHandle>,
        idle_after: Duration,
        factory: impl Fn(u64, &ArbiterHandle) -> Addr<A> + Send + Sync + 'static,
    ) -> Self {
        Self {
            actors: HashMap::new(),
            arbiters,
            factory: Arc::new(factory),
            idle_after,
            sweep_every: (idle_after / 2).clamp(Duration::from_millis(50), Duration::from_secs(30)),
        }
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        self.actors.retain(|_, (addr, _)| addr.connected());
        let now = Instant::now();
        let idle: Vec<(u64, Addr<A>)> = self
            .actors
            .iter()
            .filter(|(_, (_, used))| now.duration_since(*used) >= self.idle_after)
            .map(|(key, (addr, _))| (*key, addr.clone()))
            .collect();
        for (key, addr) in idle {
            let asked = addr.clone();
            // `wait` keeps lookups out until the answer is in, so no caller
            // is handed an actor that is about to stop.
            ctx.wait(
                asked
                    .send(Shutdown)
                    .into_actor(self)
                    .map(move |answer, registry, _| {
                        if matches!(answer, Ok(true) | Err(_)) {
                            if let Some((current, _)) = registry.actors.get(&key) {
                                if *current == addr {
                                    registry.actors.remove(&key);
                                }
                            }
                        }
                    }),
            );
        }
    }
}

impl<A> Actor for Registry<A>
where
    A: Actor<Context = Context<A>> + Handler<Shutdown>,
{
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.sweep_every, |registry, ctx| registry.sweep(ctx));
    }
}

impl<A> Handler<Lookup<A>> for Registry<A>
where
    A: Actor<Context = Context<A>> + Handler<Shutdown>,
    A::Context: ToEnvelope<A, Shutdown>,
{
    type Result = MessageResult<Lookup<A>>;

    fn handle(&mut self, msg: Lookup<A>, _: &mut Context<Self>) -> Self::Result {
        let key = msg.0;
        let now = Instant::now();
        if let Some((addr, used)) = self.actors.get_mut(&key) {
            if addr.connected() {
                *used = now;
                return MessageResult(addr.clone());
            }
            tracing::warn!(key, "actor died; starting a fresh one from the store");
        }
        let arbiter = &self.arbiters[(key % self.arbiters.len().max(1) as u64) as usize];
        let addr = (self.factory)(key, arbiter);
        self.actors.insert(key, (addr.clone(), now));
        MessageResult(addr)
    }
}

impl<A> Handler<LiveCount> for Registry<A>
where
    A: Actor<Context = Context<A>> + Handler<Shutdown>,
{
    type Result = usize;
    fn handle(&mut self, _: LiveCount, _: &mut Context<Self>) -> usize {
        self.actors.values().filter(|(a, _)| a.connected()).count()
    }
}

impl<A> Handler<StopRegistry> for Registry<A>
where
    A: Actor<Context = Context<A>> + Handler<Shutdown>,
{
    type Result = ();
    fn handle(&mut self, _: StopRegistry, ctx: &mut Context<Self>) {
        // Dropping the addresses and the factory releases their store handles.
        self.actors.clear();
        ctx.stop();
    }
}

/// How often a message is offered to a freshly started actor after the one
/// it was sent to turned out to be stopped. Each miss means the sweep stopped
/// that actor in the window between lookup and delivery, which a loaded
/// machine with a short idle timeout can hit several times in a row; the
/// bound only keeps a registry that is shutting down from looping forever.
pub const DELIVERY_ATTEMPTS: usize = 50;

/// Sends `msg` to the actor for `key` (starting it if needed) and returns the
/// actor's address with its answer.
///
/// The registry may stop an idle actor between handing out its address and
/// the message reaching it. Such a message was never handled (its mailbox
/// was closed), and the actor's state is in sled, so the message is offered
/// again to the fresh actor the next lookup starts. Only messages that are
/// safe to handle again after a closed mailbox may be sent this way.
pub async fn ask<A, M>(
    registry: &Addr<Registry<A>>,
    key: u64,
    msg: M,
) -> Result<(Addr<A>, M::Result), MailboxError>
where
    A: Actor<Context = Context<A>> + Handler<Shutdown> + Handler<M> + Send,
    A::Context: ToEnvelope<A, Shutdown> + ToEnvelope<A, M>,
    M: Message + Clone + Send + 'static,
    M::Result: Send,
{
    let mut attempt = 1;
    loop {
        let addr = registry.send(Lookup::new(key)).await?;
        match addr.send(msg.clone()).await {
            Ok(answer) => return Ok((addr, answer)),
            Err(MailboxError::Closed) if attempt < DELIVERY_ATTEMPTS => {
                tracing::debug!(
                    key,
                    attempt,
                    "actor stopped before the message arrived; retrying"
                );
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
