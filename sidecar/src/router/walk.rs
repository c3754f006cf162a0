//! One call's walk over its candidates: what was tried, skipped and answered, and what
//! follows a failure.

use std::{collections::HashSet, time::Duration};

use switchyard_crds::proxy::Policy;
use tokio::time::Instant;

use super::{backoff, count_attempt, Call, Report, DEFAULT_RATE_LIMIT_SKIP};
use crate::{
    error::Error,
    failure::{exhausted, Failure},
    health::Admission,
    metrics::ModelLabels,
    plan::Candidate,
    provider,
    state::Runtime,
    Shared,
};

/// What follows a failed attempt.
pub(super) enum After {
    /// Try the next candidate.
    Next,
    /// Stop: the failure is not one the policy retries.
    Stop,
    /// Answer the caller with this error now.
    Answer(Error),
}

/// One call's walk over its candidates: what was tried, skipped and answered.
#[derive(Default)]
pub(super) struct Walk<'a> {
    pub(super) report: Report,
    pub(super) lines: Vec<String>,
    pub(super) failures: Vec<Failure>,
    pub(super) skipped_until: Option<Instant>,
    pub(super) circuit_skips: usize,
    bad_providers: HashSet<&'a str>,
    tried: HashSet<usize>,
    unusable: HashSet<usize>,
    retries_of_same: u32,
}

impl<'a> Walk<'a> {
    /// Every candidate failed or none could be tried: the caller's error, and where it went.
    pub(super) fn give_up(self) -> (Result<super::Answer, Error>, Report) {
        let err = exhausted(
            self.failures,
            self.lines,
            self.skipped_until,
            self.circuit_skips,
        );
        (Err(err), self.report)
    }

    fn line(&mut self, line: String) {
        if !self.lines.contains(&line) {
            self.lines.push(line);
        }
    }

    fn skip_until(&mut self, until: Instant) {
        self.skipped_until = Some(self.skipped_until.map_or(until, |s| s.min(until)));
    }

    /// The candidate's provider, when it may be tried now; else why not is noted.
    pub(super) fn usable(
        &mut self,
        i: usize,
        c: &Candidate<'a>,
        rt: &'a Runtime,
        call: &Call<'_>,
        model_name: &str,
    ) -> Option<&'a switchyard_crds::proxy::Provider> {
        let b = c.backend;
        if self.unusable.contains(&i) || self.bad_providers.contains(b.provider.as_str()) {
            return None;
        }
        let provider = rt.config.providers.get(&b.provider)?;
        if call
            .pin
            .as_ref()
            .is_some_and(|p| !p.allows(&b.provider, provider))
        {
            return None;
        }
        if !provider::adapter(provider.type_).serves(call.op) {
            let op = call.op.as_str();
            let why = format!("{}/{}: does not serve {op}", b.provider, b.model);
            self.lines.push(why.clone());
            let message = format!("model `{model_name}` cannot serve {op}: {why}");
            self.failures
                .push(Failure::Unsupported(Error::invalid("model", message)));
            self.unusable.insert(i);
            return None;
        }
        let policy = &rt.config.policy;
        match c.health.admit(Instant::now(), policy.cooldown.0) {
            Admission::Allowed | Admission::Probe => Some(provider),
            Admission::RateLimited(until) => {
                self.skip_until(until);
                None
            }
            Admission::CircuitOpen(_) => {
                self.circuit_skips += 1;
                self.line(format!("{}/{}: circuit open", b.provider, b.model));
                None
            }
        }
    }

    /// The candidate's provider account is spent for `wait`.
    pub(super) fn account_spent(&mut self, i: usize, c: &Candidate<'_>, wait: Duration) {
        let b = c.backend;
        self.skip_until(Instant::now() + wait);
        let p = &b.provider;
        self.line(format!(
            "{p}/{}: account limit of AIProvider {p} reached",
            b.model
        ));
        self.unusable.insert(i);
    }

    /// Waits the backoff before trying a backend again; false when that passes the deadline.
    pub(super) async fn pace(&mut self, i: usize, policy: &Policy, deadline: Instant) -> bool {
        if self.tried.insert(i) {
            return true;
        }
        let wait = backoff(policy, self.retries_of_same);
        self.retries_of_same += 1;
        if Instant::now() + wait >= deadline {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }

    /// Counts an attempt about to be made.
    pub(super) fn begin(&mut self, shared: &Shared, c: &Candidate<'_>, model_name: &str) {
        self.report.attempts += 1;
        self.report.provider = c.backend.provider.clone();
        self.report.model = c.backend.model.clone();
        if self.report.attempts > 1 {
            let labels = ModelLabels {
                gen_ai_request_model: model_name.to_string(),
            };
            shared.metrics.failovers.get_or_create(&labels).inc();
        }
    }

    /// Records a failed attempt against its backend and says what follows.
    pub(super) fn failed(
        &mut self,
        i: usize,
        c: &Candidate<'a>,
        failure: Failure,
        shared: &Shared,
        policy: &Policy,
    ) -> After {
        let b = c.backend;
        let (outcome, status) = failure.outcome();
        tracing::warn!(provider = %b.provider, model = %b.model, attempt = self.report.attempts, outcome, status, "upstream attempt failed");
        if let Failure::Unsupported(_) = failure {
            self.report.attempts -= 1;
            self.unusable.insert(i);
        }
        let now = Instant::now();
        if failure.counts_against_backend()
            && c.health
                .failure(now, policy.consecutive_failures, policy.cooldown.0)
        {
            tracing::warn!(provider = %b.provider, model = %b.model, "circuit opened");
        }
        count_attempt(shared, c, outcome, status);
        if let Failure::RateLimited { until, .. } = &failure {
            let until = until.unwrap_or_else(|| now + DEFAULT_RATE_LIMIT_SKIP);
            c.health.rate_limited(until);
            self.skip_until(until);
        }
        self.lines.push(format!(
            "{}/{}: {}",
            b.provider,
            b.model,
            failure.describe()
        ));
        match failure {
            Failure::Rejected(e) => return After::Answer(e),
            Failure::Auth(_) => {
                self.bad_providers.insert(&b.provider);
            }
            _ => {}
        }
        let retryable = failure
            .class()
            .is_some_and(|class| policy.retry_on.contains(&class));
        let stop = !retryable && !matches!(failure, Failure::Auth(_) | Failure::Unsupported(_));
        self.failures.push(failure);
        if stop {
            After::Stop
        } else {
            After::Next
        }
    }
}
