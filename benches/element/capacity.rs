//! Section 3's capacity search: the largest number of concurrent live streams one machine
//! carries without underrun, with the element and without it (the baseline), found by the same
//! search and the same criterion for both, side by side in one run.
//!
//! The machine is shared and noisy, so the two searches are interleaved (one element probe, then
//! one baseline probe, so both see the same conditions), the whole search is repeated, and the
//! spread and the load average are reported with the figures.

/// One search for the largest passing N: doubling from `start` until a probe fails (or `max`
/// passes), then bisecting between the largest pass and the smallest failure down to
/// `resolution`. A probe is one run of N pipelines; a noisy machine can make a larger N pass
/// after a smaller one failed: the answer is always the largest pass below the smallest failure.
#[derive(Debug, Clone)]
pub struct CapacitySearch {
    start: usize,
    max: usize,
    resolution: usize,
    /// Every probe so far: N and whether it passed.
    probes: Vec<(usize, bool)>,
}

impl CapacitySearch {
    pub fn new(start: usize, max: usize, resolution: usize) -> Self {
        Self {
            start: start.max(1),
            max: max.max(start.max(1)),
            resolution: resolution.max(1),
            probes: Vec::new(),
        }
    }

    fn smallest_failure(&self) -> Option<usize> {
        self.probes.iter().filter(|p| !p.1).map(|p| p.0).min()
    }

    /// The next N to probe, or `None` once the capacity is known to `resolution`.
    pub fn next(&self) -> Option<usize> {
        let passed = self.capacity();
        match self.smallest_failure() {
            None if passed >= self.max => None,
            None if passed == 0 => Some(self.start),
            None => Some((passed * 2).min(self.max)),
            Some(failed) if failed <= passed + self.resolution => None,
            Some(failed) => Some(passed + (failed - passed) / 2),
        }
    }

    pub fn record(&mut self, n: usize, passed: bool) {
        self.probes.push((n, passed));
    }

    /// The largest N that passed below the smallest failure (0 when none did).
    pub fn capacity(&self) -> usize {
        let failed = self.smallest_failure().unwrap_or(usize::MAX);
        self.probes
            .iter()
            .filter(|p| p.1 && p.0 < failed)
            .map(|p| p.0)
            .max()
            .unwrap_or(0)
    }

    /// Whether the search stopped at `max` without a failure (the capacity is at least that).
    pub fn capped(&self) -> bool {
        self.smallest_failure().is_none() && self.capacity() >= self.max
    }
}

/// What one probe measured, as the search and the report need it.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub n: usize,
    pub passed: bool,
    /// CPU of the bench process (and of the echo server process), % of one core.
    pub cpu_percent: f64,
    pub server_cpu_percent: f64,
    /// Peak RSS during the probe above the process's RSS before it, MB.
    pub rss_growth_mb: f64,
    pub server_rss_mb: f64,
    /// 1-minute load average after the probe.
    pub load: f64,
    /// CPU the machine's other processes used during the probe, % of one core.
    pub others_cpu_percent: f64,
}

/// The outcome of one repetition: both searches and their probes.
#[derive(Debug, Clone)]
pub struct Repetition {
    pub element: CapacitySearch,
    pub baseline: CapacitySearch,
    pub element_probes: Vec<Probe>,
    pub baseline_probes: Vec<Probe>,
}

impl Repetition {
    /// Element capacity over baseline capacity.
    pub fn ratio(&self) -> f64 {
        self.element.capacity() as f64 / self.baseline.capacity().max(1) as f64
    }

    /// The element's probe at its capacity (the largest passing one).
    pub fn element_at_capacity(&self) -> Option<&Probe> {
        at(&self.element_probes, self.element.capacity())
    }

    pub fn baseline_at_capacity(&self) -> Option<&Probe> {
        at(&self.baseline_probes, self.baseline.capacity())
    }

    pub fn load_range(&self) -> (f64, f64) {
        self.element_probes
            .iter()
            .chain(&self.baseline_probes)
            .map(|p| p.load)
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), l| {
                (lo.min(l), hi.max(l))
            })
    }
}

fn at(probes: &[Probe], n: usize) -> Option<&Probe> {
    probes.iter().rev().find(|p| p.passed && p.n == n)
}

/// Runs both searches interleaved: element probe, baseline probe, element probe, … until both
/// know their capacity.
pub fn search_both(
    template: &CapacitySearch,
    mut probe_element: impl FnMut(usize) -> Probe,
    mut probe_baseline: impl FnMut(usize) -> Probe,
) -> Repetition {
    let mut rep = Repetition {
        element: template.clone(),
        baseline: template.clone(),
        element_probes: Vec::new(),
        baseline_probes: Vec::new(),
    };
    loop {
        let (e, b) = (rep.element.next(), rep.baseline.next());
        if e.is_none() && b.is_none() {
            return rep;
        }
        if let Some(n) = e {
            let p = probe_element(n);
            rep.element.record(n, p.passed);
            rep.element_probes.push(p);
        }
        if let Some(n) = b {
            let p = probe_baseline(n);
            rep.baseline.record(n, p.passed);
            rep.baseline_probes.push(p);
        }
    }
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Median, smallest and largest of some figures.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (median, v[0], v[v.len() - 1])
}

/// Self-checks of the search, run at the start of the section (a bench binary has no test
/// harness): a wrong search would report a wrong capacity with a straight face.
pub fn check_search() {
    for capacity in [0usize, 1, 37, 99, 100, 150, 263, 399, 400, 1000] {
        let mut s = CapacitySearch::new(100, 400, 10);
        let mut probes = 0;
        while let Some(n) = s.next() {
            s.record(n, n <= capacity);
            probes += 1;
            assert!(probes < 30, "search does not end for capacity {capacity}");
        }
        let expected = capacity.min(400);
        assert!(
            s.capacity() <= expected && s.capacity() + 10 >= expected,
            "capacity {capacity}: search found {}",
            s.capacity()
        );
        assert_eq!(s.capped(), capacity >= 400);
    }
    // A noisy pass above a failure does not raise the answer past the failure.
    let mut s = CapacitySearch::new(100, 400, 10);
    s.record(200, false);
    s.record(300, true);
    assert_eq!(s.capacity(), 0);
    s.record(150, true);
    assert_eq!(s.capacity(), 150);
    s.record(120, false);
    assert_eq!(s.capacity(), 0);
    s.record(110, true);
    assert_eq!(s.capacity(), 110);
}
