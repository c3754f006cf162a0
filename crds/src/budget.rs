//! `AIBudget`: a spend cap, in US dollars per day, week or month, shared by the pods it
//! selects; and the calendar of its periods.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::Condition;

/// A spend cap shared by the pods it selects.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "AIBudget",
    namespaced,
    doc = "An AIBudget caps what the pods it selects may spend on the models it covers, in US dollars per day, week or month (UTC). Every budget that applies to a call must be able to reserve its maximum cost before the call is sent.",
    shortname = "aib",
    category = "switchyard",
    status = "BudgetStatus",
    printcolumn = r#"{"name":"Limit","type":"string","jsonPath":".spec.limit"}"#,
    printcolumn = r#"{"name":"Spent","type":"string","jsonPath":".status.spent"}"#,
    printcolumn = r#"{"name":"Period","type":"string","jsonPath":".spec.period"}"#,
    printcolumn = r#"{"name":"Exhausted","type":"string","jsonPath":".status.conditions[?(@.type==\"Exhausted\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AIBudgetSpec {
    /// The pods whose calls count; empty selects every pod in the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Only calls to these AIModels count; absent: every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// US dollars per period, as a decimal string with at most six decimals (`"2000.00"`).
    #[schemars(extend("pattern" = "^[0-9]+(\\.[0-9]{1,6})?$"))]
    pub limit: String,
    /// `day`, `week` or `month`, in UTC: periods start at midnight, on Monday, on the 1st.
    pub period: Period,
}

/// The length of a budget period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Period {
    /// From midnight UTC.
    Day,
    /// From Monday midnight UTC.
    Week,
    /// From the 1st, midnight UTC.
    Month,
}

impl Period {
    /// The name used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The start of the period holding `unix` seconds, and the start of the next one.
    pub fn bounds(self, unix: i64) -> (i64, i64) {
        const DAY: i64 = 86_400;
        let day = unix.div_euclid(DAY);
        match self {
            Period::Day => (day * DAY, (day + 1) * DAY),
            Period::Week => {
                // 1970-01-01 was a Thursday: Monday is three days later in the cycle.
                let monday = day - (day + 3).rem_euclid(7);
                (monday * DAY, (monday + 7) * DAY)
            }
            Period::Month => {
                let (y, m, _) = civil(day);
                let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (days(y, m, 1) * DAY, days(next.0, next.1, 1) * DAY)
            }
        }
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number since 1970-01-01.
pub fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// RFC 3339 (UTC, seconds) of unix seconds.
pub fn rfc3339(unix: i64) -> String {
    let (y, m, d) = civil(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Unix seconds of an RFC 3339 UTC time as [`rfc3339`] writes it (`2026-12-01T00:00:00Z`).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let t: Vec<i64> = time
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match (d.as_slice(), t.as_slice()) {
        ([y, m, d], [h, mi, s]) => Some(days(*y, *m, *d) * 86_400 + h * 3600 + mi * 60 + s),
        _ => None,
    }
}

/// What the operator writes about a budget.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Dollars settled this period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<String>,
    /// Dollars held by leases out and calls in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<String>,
    /// When this period began (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<String>,
    /// When the next period begins and spend starts again from zero (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<String>,
    /// `Ready`, and `Exhausted` (True once spent + reserved reaches the limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap_or_default()
    }

    #[test]
    fn periods_start_at_midnight_monday_and_the_first_in_utc() {
        let now = at("2026-11-30T15:04:05Z"); // a Monday
        let show = |p: Period| {
            let (a, b) = p.bounds(now);
            (rfc3339(a), rfc3339(b))
        };
        assert_eq!(
            show(Period::Day),
            ("2026-11-30T00:00:00Z".into(), "2026-12-01T00:00:00Z".into())
        );
        assert_eq!(
            show(Period::Week),
            ("2026-11-30T00:00:00Z".into(), "2026-12-07T00:00:00Z".into())
        );
        assert_eq!(
            show(Period::Month),
            ("2026-11-01T00:00:00Z".into(), "2026-12-01T00:00:00Z".into())
        );
        let (a, b) = Period::Week.bounds(at("2026-12-06T23:59:59Z"));
        assert_eq!(
            (rfc3339(a), rfc3339(b)),
            ("2026-11-30T00:00:00Z".into(), "2026-12-07T00:00:00Z".into())
        );
        let (a, b) = Period::Month.bounds(at("2024-02-29T12:00:00Z"));
        assert_eq!(
            (rfc3339(a), rfc3339(b)),
            ("2024-02-01T00:00:00Z".into(), "2024-03-01T00:00:00Z".into())
        );
        let (a, b) = Period::Month.bounds(at("2026-12-31T23:59:59Z"));
        assert_eq!(
            (rfc3339(a), rfc3339(b)),
            ("2026-12-01T00:00:00Z".into(), "2027-01-01T00:00:00Z".into())
        );
    }
}
