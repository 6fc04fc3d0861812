//! The seam between the resolution state machine and a real DNS: [`DnsBackend`], and with the
//! `tokio` feature the async [`resolve`] helper that drives a [`Resolution`] with a backend
//! and a [`DnsCache`].

use std::future::Future;

use super::dns::{DnsAnswer, DnsQuery};
#[cfg(feature = "tokio")]
use super::{
    Destination, DnsCache, Resolution, ResolveConfig, ResolveError, Resolved, TriedLookups,
};

/// Something that answers DNS questions: hickory-resolver in the driver
/// ([`super::hickory::HickoryBackend`]), a table in tests.
///
/// Report NODATA as `Ok(vec![])`, a missing name as [`super::DnsError::NxDomain`], and give
/// up on a question after the backend's own timeout with [`super::DnsError::Timeout`].
pub trait DnsBackend {
    /// Ask one question.
    fn query(&self, query: &DnsQuery) -> impl Future<Output = DnsAnswer> + Send;
}

/// Resolve `destination` with `backend`, answering from and filling `cache`. The questions of
/// each RFC 3263 stage run concurrently. This is driver code: it reads the clock for the
/// cache.
#[cfg(feature = "tokio")]
#[allow(clippy::disallowed_methods)] // the driver side of the sans-IO seam reads the clock
pub async fn resolve<B, R>(
    destination: Destination,
    config: ResolveConfig,
    backend: &B,
    cache: &mut DnsCache,
    rng: &mut R,
) -> Result<Resolved, ResolveError>
where
    B: DnsBackend + ?Sized,
    R: rand_core::Rng + ?Sized,
{
    use std::time::Instant;

    let domain = destination.host.clone();
    let mut res = Resolution::new(destination, config, rng);
    loop {
        let mut batch = Vec::new();
        while let Some(q) = res.poll_query_cached(Instant::now(), cache) {
            batch.push(q);
        }
        if batch.is_empty() {
            return res.poll_result().unwrap_or_else(|| {
                // Unreachable by construction: a resolution with nothing to ask is done.
                Err(ResolveError::NoServers {
                    domain,
                    tried: TriedLookups::default(),
                })
            });
        }
        let answers = join_all(batch.iter().map(|q| backend.query(q)).collect()).await;
        let now = Instant::now();
        for (q, answer) in batch.into_iter().zip(answers) {
            cache.insert(now, q.clone(), answer.clone());
            res.handle_answer(now, &q, answer);
        }
    }
}

/// Run futures concurrently on the current task and collect their outputs in order.
#[cfg(feature = "tokio")]
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::pin::Pin;
    use std::task::Poll;

    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("poll_fn returns only when every future is ready"))
        .collect()
}
