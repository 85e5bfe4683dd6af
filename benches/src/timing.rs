//! Interleaved batch timing: every contender of a case runs one batch per round, in an order
//! that rotates from round to round, so that a change in machine load hits them all alike.
//! A batch's time over its number of calls is one sample; the answer is the median sample.

use std::time::{Duration, Instant};

/// Runs `n` calls of one contender (the loop is inside, so a call costs no dynamic dispatch).
pub type Batch<'a> = Box<dyn FnMut(usize) + 'a>;

/// ns per call of one batch of `n` calls.
pub fn time_batch(run: &mut dyn FnMut(usize), n: usize) -> f64 {
    let start = Instant::now();
    run(n);
    start.elapsed().as_nanos() as f64 / n as f64
}

/// A batch size for which `run` takes about `target` (at least 16 calls, at most 100,000),
/// from the fastest of three timed batches after a warm-up one (a first call may fault in
/// pages or fill caches).
pub fn calibrate(run: &mut dyn FnMut(usize), target: Duration) -> usize {
    const PROBE: usize = 16;
    run(PROBE);
    let per_call = (0..3)
        .map(|_| time_batch(run, PROBE))
        .fold(f64::INFINITY, f64::min)
        .max(1.0);
    ((target.as_nanos() as f64 / per_call) as usize).clamp(PROBE, 100_000)
}

/// `rounds` samples (ns per call) of each contender: one warm-up batch each, then per round
/// one batch of `batch` calls each, starting with contender `round % len`.
pub fn interleaved(contenders: &mut [Batch<'_>], batch: usize, rounds: usize) -> Vec<Vec<f64>> {
    let count = contenders.len();
    for run in contenders.iter_mut() {
        run(batch);
    }
    let mut samples = vec![Vec::with_capacity(rounds); count];
    for round in 0..rounds {
        for k in 0..count {
            let which = (round + k) % count;
            let per_call = time_batch(&mut *contenders[which], batch);
            samples[which].push(per_call);
        }
    }
    samples
}

/// The `q` quantile (0 ≤ q ≤ 1) of `samples`, by the nearest rank of the sorted samples.
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        len => sorted[((len - 1) as f64 * q).round() as usize],
    }
}

/// The median of `samples`.
pub fn median(samples: &[f64]) -> f64 {
    quantile(samples, 0.5)
}

/// Per-round ratios `a[i] / b[i]` of two contenders timed in the same rounds.
pub fn paired_ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a / b).collect()
}
