//! The registration cache: memory regions of user buffers, kept registered
//! between messages because registering (pinning pages, programming the
//! adapter) costs far more than a small transfer. Pure: generic over the
//! region handle, so it is tested without a device.
//!
//! Entries are keyed by address range; a lookup hits when one entry covers
//! the whole requested range. The cache holds at most [`RegCache::new`]'s
//! `max_entries` entries and `max_bytes` bytes, evicting the least recently
//! used first; an evicted handle is dropped, which deregisters it.
//!
//! Caveat, as for every MPI registration cache without memory hooks: a
//! range that is unmapped and mapped again while still cached keeps
//! pointing at the old, still pinned pages, so the bytes moved would be
//! the wrong ones. The verbs transport therefore caches only rendezvous
//! buffers of the heap, after telling malloc never to give heap memory
//! back to the system (`sys::keep_heap`, what MPI libraries do when they
//! leave memory pinned without hooks): a freed buffer's address then
//! keeps its pages when malloc hands it out again. Other memory is
//! registered for one message at a time. An entry the cache evicts while
//! a message still uses it stays registered until that message ends (the
//! transport holds a clone of the handle).

/// A bounded, least-recently-used set of registrations.
#[derive(Debug)]
pub struct RegCache<H> {
    entries: Vec<Entry<H>>,
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    clock: u64,
}

#[derive(Debug)]
struct Entry<H> {
    start: usize,
    len: usize,
    used: u64,
    handle: H,
}

impl<H> RegCache<H> {
    pub fn new(max_entries: usize, max_bytes: usize) -> RegCache<H> {
        RegCache {
            entries: Vec::new(),
            max_entries: max_entries.max(1),
            max_bytes,
            bytes: 0,
            clock: 0,
        }
    }

    /// The registration covering `start..start + len`, marked used.
    pub fn get(&mut self, start: usize, len: usize) -> Option<&H> {
        self.clock += 1;
        let now = self.clock;
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.start <= start && start + len <= e.start + e.len)?;
        e.used = now;
        Some(&e.handle)
    }

    /// Adds a registration of `start..start + len`, first evicting least
    /// recently used entries (and any entry the new one covers) until it
    /// fits; returns the evicted handles (dropping them deregisters).
    pub fn insert(&mut self, start: usize, len: usize, handle: H) -> Vec<H> {
        self.clock += 1;
        let mut evicted = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            let e = &self.entries[i];
            if start <= e.start && e.start + e.len <= start + len {
                self.bytes -= e.len;
                evicted.push(self.entries.swap_remove(i).handle);
            } else {
                i += 1;
            }
        }
        while !self.entries.is_empty()
            && (self.entries.len() + 1 > self.max_entries || self.bytes + len > self.max_bytes)
        {
            let lru = (0..self.entries.len())
                .min_by_key(|&i| self.entries[i].used)
                .expect("not empty");
            self.bytes -= self.entries[lru].len;
            evicted.push(self.entries.swap_remove(lru).handle);
        }
        self.bytes += len;
        self.entries.push(Entry {
            start,
            len,
            used: self.clock,
            handle,
        });
        evicted
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes registered through the cache.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_covering_entry_hits_a_partial_one_misses() {
        let mut c = RegCache::new(4, 1 << 20);
        assert!(c.insert(1000, 100, "a").is_empty());
        assert_eq!(c.get(1000, 100), Some(&"a"));
        assert_eq!(c.get(1010, 50), Some(&"a"));
        assert_eq!(c.get(1050, 100), None);
        assert_eq!(c.get(900, 10), None);
    }

    #[test]
    fn least_recently_used_goes_first_when_full() {
        let mut c = RegCache::new(2, 1 << 20);
        c.insert(0, 10, 'a');
        c.insert(100, 10, 'b');
        c.get(0, 10); // 'a' is now the most recent
        assert_eq!(c.insert(200, 10, 'c'), vec!['b']);
        assert_eq!(c.len(), 2);
        assert!(c.get(100, 10).is_none());
    }

    #[test]
    fn the_byte_bound_evicts_until_the_new_entry_fits() {
        let mut c = RegCache::new(10, 100);
        c.insert(0, 40, 1);
        c.insert(100, 40, 2);
        let mut ev = c.insert(200, 90, 3);
        ev.sort();
        assert_eq!(ev, vec![1, 2]);
        assert_eq!(c.bytes(), 90);
        // One entry larger than the bound is still kept (it is in use).
        assert_eq!(c.insert(1000, 500, 4), vec![3]);
        assert_eq!(c.bytes(), 500);
    }

    #[test]
    fn a_larger_registration_replaces_the_ones_it_covers() {
        let mut c = RegCache::new(10, 1 << 20);
        c.insert(10, 10, 'a');
        c.insert(30, 10, 'b');
        assert_eq!(c.insert(0, 100, 'c').len(), 2);
        assert_eq!(c.get(30, 5), Some(&'c'));
        assert_eq!(c.len(), 1);
    }
}
