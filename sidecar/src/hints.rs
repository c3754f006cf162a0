//! When a rate-limited upstream says to come back, from whichever header it uses:
//! `retry-after-ms` (OpenAI), `retry-after` as seconds or an HTTP-date (RFC 9110), or the
//! soonest `x-ratelimit-reset-*` (`1s`, `6m0s`, `20ms`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// When a rate-limited upstream says to come back: `retry-after-ms`, `retry-after`
/// (seconds), or the soonest `x-ratelimit-reset-*` (`1s`, `6m0s`, `20ms`).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    if let Some(v) = text("retry-after") {
        if let Ok(secs) = v.parse::<f64>() {
            return Some(Duration::from_secs_f64(secs.max(0.0)));
        }
        if let Some(at) = http_date(v) {
            return Some(at.duration_since(SystemTime::now()).unwrap_or_default());
        }
    }
    ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
        .iter()
        .filter_map(|h| text(h).and_then(go_duration))
        .min()
}

fn go_duration(s: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += n * unit;
        any = true;
    }
    (any && num.is_empty()).then(|| Duration::from_secs_f64(total))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the HTTP-date senders must use.
fn http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_hints_are_read_from_every_header_providers_use() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<u64>);
        let cases: &[Case<'_>] = &[
            (&[("retry-after", "3")], Some(3000)),
            (&[("retry-after-ms", "250")], Some(250)),
            (
                &[
                    ("x-ratelimit-reset-requests", "6m0s"),
                    ("x-ratelimit-reset-tokens", "1s"),
                ],
                Some(1000),
            ),
            (&[("x-ratelimit-reset-tokens", "20ms")], Some(20)),
            (&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], Some(0)),
            (&[], None),
        ];
        for (pairs, want) in cases {
            let mut h = HeaderMap::new();
            for (k, v) in *pairs {
                h.insert(*k, v.parse().expect("valid header"));
            }
            assert_eq!(
                retry_after(&h).map(|d| d.as_millis() as u64),
                *want,
                "{pairs:?}"
            );
        }
    }
}

#[cfg(test)]
mod date_tests {
    use super::*;

    #[test]
    fn http_dates_parse_to_the_right_instant() {
        let t = http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("a valid date");
        assert_eq!(
            t.duration_since(UNIX_EPOCH)
                .expect("after the epoch")
                .as_secs(),
            784_111_777
        );
        assert!(
            http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_none(),
            "only IMF-fixdate is sent by conforming servers"
        );
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            "Fri, 01 Jan 2100 00:00:00 GMT"
                .parse()
                .expect("valid header"),
        );
        assert!(retry_after(&h).expect("a hint") > Duration::from_secs(365 * 86_400));
    }
}
