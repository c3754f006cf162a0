#![allow(clippy::unwrap_used)]

use super::{pki::*, *};

const LIFE: Duration = Duration::from_secs(600);

fn certs_in(bundle: &str) -> usize {
    bundle.matches("BEGIN CERTIFICATE").count()
}

#[test]
fn the_ca_rolls_over_in_three_steps_and_the_bundle_always_holds_the_signer() {
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let mut cas = Authorities::new(start, LIFE).unwrap();
    let first = cas.current.clone();
    let at = |s: i64| start + time::Duration::seconds(s);
    assert_eq!(cas.roll(at(300), LIFE).unwrap(), None, "half-way: nothing");
    assert_eq!(certs_in(&cas.bundle(at(300)).unwrap()), 1);

    assert_eq!(
        cas.roll(at(420), LIFE).unwrap(),
        Some("successor CA published")
    );
    assert_eq!(cas.current, first, "the old CA still signs");
    assert_eq!(certs_in(&cas.bundle(at(420)).unwrap()), 2);
    assert_eq!(cas.roll(at(420), LIFE).unwrap(), None);

    let step = cas.roll(at(520), LIFE).unwrap().unwrap();
    assert!(step.starts_with("successor CA now signs"), "{step}");
    assert_ne!(cas.current, first);
    assert_eq!(cas.previous.as_deref(), Some(first.cert.as_str()));
    let bundle = cas.bundle(at(520)).unwrap();
    assert_eq!(certs_in(&bundle), 2);
    assert!(bundle.starts_with(first.cert.trim_end()), "oldest first");

    assert_eq!(
        cas.roll(at(700), LIFE).unwrap(),
        Some("expired CA removed from the bundle")
    );
    assert_eq!(certs_in(&cas.bundle(at(700)).unwrap()), 1);
}

#[test]
fn the_secret_round_trips_every_generation() {
    let now = OffsetDateTime::now_utc();
    let mut cas = Authorities::new(now, LIFE).unwrap();
    cas.roll(now + time::Duration::seconds(500), LIFE).unwrap();
    cas.roll(now + time::Duration::seconds(550), LIFE).unwrap();
    assert!(cas.previous.is_some());
    let secret = cas.to_secret(Some("7".into()));
    assert_eq!(Authorities::from_secret(&secret).unwrap(), cas);
}

#[test]
fn a_serving_certificate_never_outlives_its_ca_and_is_renewed_two_thirds_in() {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let ca = Authority::create(now, LIFE).unwrap();
    let names = serving_names(
        "switchyard-system",
        &["10.0.0.1".into(), "op.example".into()],
    );
    let (_, renew_at) = ca.issue(&names, now, Duration::from_secs(60)).unwrap();
    assert_eq!((renew_at - now).whole_seconds(), 40);
    let (_, renew_at) = ca.issue(&names, now, Duration::from_secs(6000)).unwrap();
    assert_eq!(
        (renew_at - now).whole_seconds(),
        400,
        "clamped to the CA's 600 s"
    );
    assert!(names.contains(&SanType::IpAddress("10.0.0.1".parse().unwrap())));
    assert!(names.contains(&SanType::DnsName("op.example".try_into().unwrap())));
}
