//! A map bounded in size and in age, for the sidecar's in-memory state (stored responses,
//! cached answers, session placements): entries older than the caller's `ttl` are not
//! returned, and a put drops the expired and, past `capacity`, the oldest first.

use std::{
    borrow::Borrow,
    collections::{hash_map::Entry, HashMap, VecDeque},
    hash::{BuildHasher, Hash, RandomState},
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

/// The map, its keys hashed by `S`.
#[derive(Debug)]
pub struct Bounded<K, V, S = RandomState> {
    inner: Mutex<Inner<K, V, S>>,
}

#[derive(Debug)]
struct Inner<K, V, S> {
    entries: HashMap<K, (Instant, V), S>,
    /// Keys in the order they were put, with the stamp of that put (a key put again has a
    /// newer slot; its old one is skipped when it comes up).
    order: VecDeque<(Instant, K)>,
}

impl<K, V, S: Default> Default for Bounded<K, V, S> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::default(),
                order: VecDeque::new(),
            }),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone, S: BuildHasher> Bounded<K, V, S> {
    fn lock(&self) -> MutexGuard<'_, Inner<K, V, S>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value under `key`, if it was put less than `ttl` ago.
    pub fn get<Q>(&self, key: &Q, ttl: Duration) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let inner = self.lock();
        let (at, value) = inner.entries.get(key)?;
        (at.elapsed() < ttl).then(|| value.clone())
    }

    /// Puts a value, dropping the expired and, past `capacity`, the oldest; how many entries
    /// are held then.
    pub fn put(&self, key: K, value: V, capacity: usize, ttl: Duration) -> usize {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.order.push_back((now, key.clone()));
        inner.entries.insert(key, (now, value));
        while let Some((at, oldest)) = inner.order.front().cloned() {
            let full = inner.entries.len() > capacity;
            if !full && now.duration_since(at) < ttl {
                break;
            }
            inner.order.pop_front();
            if let Entry::Occupied(e) = inner.entries.entry(oldest) {
                if e.get().0 == at {
                    e.remove();
                }
            }
        }
        // Keys put again and again leave stale slots behind: keep the queue near the map's size.
        if inner.order.len() > 2 * inner.entries.len() + 64 {
            let Inner { entries, order } = &mut *inner;
            order.retain(|(at, k)| entries.get(k).is_some_and(|(t, _)| t == at));
        }
        inner.entries.len()
    }

    /// Forgets a key; whether it was there.
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.lock().entries.remove(key).is_some()
    }

    /// How many entries are held (expired ones included until a put drops them).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_past_capacity_and_everything_after_its_ttl() {
        let m: Bounded<u32, u32> = Bounded::default();
        let ttl = Duration::from_secs(60);
        for n in 0..5 {
            m.put(n, n * 10, 3, ttl);
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&0, ttl), None);
        assert_eq!(m.get(&4, ttl), Some(40));
        assert_eq!(m.get(&4, Duration::ZERO), None);
        assert!(m.remove(&4));
        assert!(!m.remove(&4));
    }

    #[test]
    fn a_key_put_again_stays_and_its_old_slots_do_not_pile_up() {
        let m: Bounded<u32, u32> = Bounded::default();
        let ttl = Duration::from_secs(60);
        m.put(1, 1, 2, ttl);
        m.put(2, 2, 2, ttl);
        for n in 0..1_000 {
            m.put(1, n, 2, ttl);
        }
        m.put(3, 3, 2, ttl);
        assert_eq!(m.get(&1, ttl), Some(999), "put last: not the oldest");
        assert_eq!(m.get(&2, ttl), None);
        let held = m.len();
        let slots = m.lock().order.len();
        assert!(
            slots <= 2 * held + 64 + 1,
            "{slots} slots for {held} entries"
        );
    }
}
