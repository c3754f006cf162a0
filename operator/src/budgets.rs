//! The leader's budget writer: every few seconds (and so at least every 10 s, and at each
//! period roll-over) each AIBudget's status gets the ledger's spend and reservations, its
//! period, and the conditions `Ready` (with what makes a budget unable to cap: no pod
//! selected, models without pricing) and `Exhausted`; Events `BudgetWarning` at 80 % and
//! `BudgetExhausted` once per period; and the `switchyard_budget_*` gauges. It also writes
//! each AIModel's `status.usage` (today and this month) as the sidecars report it.

use std::{sync::Arc, time::Duration};

use kube::{
    api::{Patch, PatchParams},
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder},
    },
    Api, Client, Resource, ResourceExt,
};
use serde_json::json;
use switchyard_crds::{compile::selects, AIBudget, BudgetStatus, Condition, Money};
use tokio::sync::watch;

use crate::{
    controller::{Reconciler, Runtime},
    error::Error,
    ledger::{period_text, Book, Ledger},
    metrics::Metrics,
    reconcile::MANAGER,
    world::World,
};

/// How often statuses are brought up to date.
pub const EVERY: Duration = Duration::from_secs(5);

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Why a budget cannot cap all it covers, if anything: by field.
pub fn problems(world: &World, b: &AIBudget) -> Vec<String> {
    let ns = b.namespace().unwrap_or_default();
    let objects = world.namespace(&ns);
    let view = objects.view();
    let mut out = Vec::new();
    if !view
        .pods
        .iter()
        .any(|p| selects(b.spec.pod_selector.as_ref(), p.labels()))
    {
        out.push(format!(
            "spec.podSelector: selects no pod in namespace {ns}"
        ));
    }
    let unpriced: Vec<String> = objects
        .models()
        .iter()
        .filter(|m| {
            b.spec
                .models
                .as_ref()
                .is_none_or(|list| list.contains(&m.name_any()))
        })
        .filter(|m| m.spec.backends.iter().any(|be| be.pricing.is_none()))
        .map(|m| m.name_any())
        .collect();
    if !unpriced.is_empty() {
        out.push(format!(
            "spec.models: AIModel {} has backends without pricing: their calls cannot be capped",
            unpriced.join(", ")
        ));
    }
    if let Some(models) = &b.spec.models {
        for (i, m) in models.iter().enumerate() {
            if !objects.models().iter().any(|x| &x.name_any() == m) {
                out.push(format!(
                    "spec.models[{i}]: AIModel {m} does not exist in namespace {ns}"
                ));
            }
        }
    }
    out
}

fn condition(
    type_: &str,
    on: bool,
    reason: &str,
    message: String,
    current: Option<&BudgetStatus>,
    now: &str,
) -> Condition {
    let status = if on { "True" } else { "False" };
    let since = current
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: Some(since.unwrap_or_else(|| now.to_string())),
        observed_generation: None,
    }
}

/// The status a budget should have.
pub fn desired(b: &AIBudget, book: &Book, problems: &[String], now: i64) -> BudgetStatus {
    let limit = Money::parse(&b.spec.limit).unwrap_or_default();
    let reserved = book.reserved(now);
    let (start, reset) = period_text(b.spec.period, book.period_start);
    let stamp = switchyard_crds::budget::rfc3339(now);
    let current = b.status.as_ref();
    let generation = b.meta().generation;
    let exhausted = book.spent + reserved >= limit.0;
    let ready = if problems.is_empty() {
        condition("Ready", true, "Ready", "counting".into(), current, &stamp)
    } else {
        condition(
            "Ready",
            false,
            "InvalidSpec",
            problems.join("; "),
            current,
            &stamp,
        )
    };
    let message = format!(
        "{} of {} US dollars spent and {} reserved this {}; resets at {reset}",
        Money(book.spent),
        limit,
        Money(reserved),
        b.spec.period.as_str()
    );
    let exhausted = condition(
        "Exhausted",
        exhausted,
        if exhausted {
            "LimitReached"
        } else {
            "WithinLimit"
        },
        message,
        current,
        &stamp,
    );
    BudgetStatus {
        observed_generation: generation,
        spent: Some(Money(book.spent).to_string()),
        reserved: Some(Money(reserved).to_string()),
        period_start: Some(start),
        reset_at: Some(reset),
        conditions: vec![
            Condition {
                observed_generation: generation,
                ..ready
            },
            Condition {
                observed_generation: generation,
                ..exhausted
            },
        ],
    }
}

/// The AIBudget controller: each budget's status brought up to date from the ledger when it
/// changes and every [`EVERY`] (so at least once a period roll-over's first seconds).
pub struct Spend {
    client: Client,
    recorder: Recorder,
    world: World,
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
}

impl Spend {
    /// The controller, recording its Events with the replica's `recorder`.
    pub fn new(
        client: &Client,
        runtime: &Runtime,
        ledger: &Arc<Ledger>,
        recorder: &Recorder,
    ) -> Self {
        Self {
            client: client.clone(),
            recorder: recorder.clone(),
            world: runtime.world.clone(),
            ledger: ledger.clone(),
            metrics: runtime.metrics.clone(),
        }
    }
}

impl Reconciler<AIBudget> for Spend {
    const NAME: &'static str = "aibudget";

    async fn reconcile(&self, budget: Arc<AIBudget>) -> Result<Action, Error> {
        let now = unix_now();
        let book = self.ledger.book_of(&budget, now);
        self.write(&budget, &book, now).await?;
        Ok(Action::requeue(EVERY))
    }
}

/// The ledger follows the lead: started afresh (to resume from status) the moment this
/// replica leads, forgotten when it stops; a task of its own, so nothing delays it.
pub async fn follow_lead(
    ledger: Arc<Ledger>,
    mut leader: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *leader.borrow_and_update() {
            ledger.lead(unix_now());
        } else {
            ledger.clear();
        }
        tokio::select! {
            r = leader.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// While this replica leads: each AIModel's `status.usage` is written every [`EVERY`] as
/// the sidecars report it, and the books of deleted budgets are dropped.
pub async fn keep_books(client: Client, ledger: Arc<Ledger>, runtime: Runtime) {
    let Runtime {
        world,
        metrics,
        leader,
        mut stop,
    } = runtime;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
        if !*leader.borrow() || !world.is_synced() {
            continue;
        }
        ledger.retain(&world.budgets.state());
        for (key, book) in ledger.take_dirty_models(unix_now()) {
            if let Err(e) = metrics
                .reconcile("usage", write_usage(&client, &key, &book))
                .await
            {
                tracing::warn!(namespace = %key.0, model = %key.1, reason = e.metric_label(), "usage not written: {e}");
                ledger.redo_model(&key);
            }
        }
    }
}

/// The field manager of `status.usage` (apart from the conditions' writer).
pub const USAGE_MANAGER: &str = "switchyard-operator-usage";

async fn write_usage(
    client: &Client,
    (ns, model): &(String, String),
    book: &crate::ledger::ModelBook,
) -> Result<(), Error> {
    let api: Api<switchyard_crds::AIModel> = Api::namespaced(client.clone(), ns);
    let patch = json!({"apiVersion": "switchyard.dev/v1alpha1", "kind": "AIModel", "status": {"usage": book.status()}});
    api.patch_status(
        model,
        &PatchParams::apply(USAGE_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

impl Spend {
    /// Brings one budget's status and gauges up to date, and records its 80 % and exhaustion
    /// Events once each.
    async fn write(&self, b: &AIBudget, book: &Book, now: i64) -> Result<(), Error> {
        let Spend {
            client,
            recorder,
            world,
            ledger,
            metrics,
        } = self;
        let ns = b.namespace().unwrap_or_default();
        let name = b.name_any();
        let limit = Money::parse(&b.spec.limit).unwrap_or_default();
        metrics.budget(&ns, &name, Money(book.spent).dollars(), limit.dollars());
        let desired = desired(b, book, &problems(world, b), now);
        let mut unchanged = desired.clone();
        if let Some(current) = &b.status {
            // Times alone do not make a write.
            for (c, old) in unchanged.conditions.iter_mut().zip(&current.conditions) {
                c.last_transition_time = old.last_transition_time.clone();
            }
        }
        if b.status.as_ref() != Some(&unchanged) {
            let api: Api<AIBudget> = Api::namespaced(client.clone(), &ns);
            let patch = json!({"apiVersion": "switchyard.dev/v1alpha1", "kind": "AIBudget", "status": desired});
            api.patch_status(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        }
        let used = book.spent + book.reserved(now);
        let warn = !book.warned && limit.0 > 0 && used * 5 >= limit.0 * 4;
        let exhausted = !book.exhausted && used >= limit.0;
        for (due, reason, what) in [
            (warn, "BudgetWarning", "80 % of the budget is used"),
            (
                exhausted,
                "BudgetExhausted",
                "the budget is exhausted: calls it covers are refused until it resets",
            ),
        ] {
            if !due {
                continue;
            }
            let event = Event {
                type_: EventType::Warning,
                reason: reason.into(),
                note: Some(format!(
                    "{what}: {} of {limit} US dollars this {}",
                    Money(used),
                    b.spec.period.as_str()
                )),
                action: "Count".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&event, &b.object_ref(&())).await {
                tracing::debug!("event not recorded: {e}");
            }
        }
        ledger.announced(b, warn, exhausted);
        Ok(())
    }
}
