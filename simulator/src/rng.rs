//! The one source of randomness: a seeded SplitMix64, so a run is replayed
//! from its seed.

/// The seed used when `SIM_SEED` is not set: runs are reproducible by
/// default.
pub const DEFAULT_SEED: u64 = 0x5EED_0F0E_57AB;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and good enough to drive
/// a simulation.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The seed of this run: `SIM_SEED` (decimal or `0x` hex) if set, a
/// clock-derived one if it is `random`, else [`DEFAULT_SEED`].
pub fn seed_from_env() -> u64 {
    match std::env::var("SIM_SEED") {
        Ok(s) => parse_seed(&s).unwrap_or_else(|| {
            if s.trim() == "random" {
                let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                SplitMix64::new(t.as_nanos() as u64).next_u64()
            } else {
                DEFAULT_SEED
            }
        }),
        Err(_) => DEFAULT_SEED,
    }
}

/// The settings of one property-test run, from the environment: every
/// property test of the repository (simulator model tests, stress tests,
/// grant test) takes its seed from `SIM_SEED` ([`seed_from_env`]) and its
/// number of cases (or rounds) from `SIM_CASES`, and prints the line that
/// replays it ([`PropRun::replay`]) when it starts and in its failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropRun {
    /// Seeds the test's generator (proptest's, or a [`SplitMix64`]).
    pub seed: u64,
    /// Cases, or rounds for the stress tests.
    pub cases: u32,
    /// `cargo test` arguments that select the test.
    selector: String,
}

impl PropRun {
    /// The run of test `test` in `package` (`--test` target `target`, or
    /// the unit tests when `target` is empty): `SIM_SEED`, and `SIM_CASES`
    /// or `default_cases`. Prints the replay line on stderr.
    pub fn from_env(package: &str, target: &str, test: &str, default_cases: u32) -> PropRun {
        let cases = std::env::var("SIM_CASES").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(default_cases);
        let target = if target.is_empty() { String::from("--lib") } else { format!("--test {target}") };
        let run =
            PropRun { seed: seed_from_env(), cases, selector: format!("-p {package} {target} -- {test} --exact") };
        eprintln!("{test}: seed {:#x}, {} cases; replay: {}", run.seed, run.cases, run.replay());
        run
    }

    /// The one-line command that runs this again with the same seed and
    /// cases.
    pub fn replay(&self) -> String {
        format!("SIM_SEED={:#x} SIM_CASES={} cargo test {}", self.seed, self.cases, self.selector)
    }
}

/// Parses a seed written in decimal or `0x` hex.
pub fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        let mut c = SplitMix64::new(43);
        let (x, y, z) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn replay_line_names_seed_cases_and_test() {
        let r = PropRun { seed: 0x2a, cases: 7, selector: String::from("-p simulator --test t -- x --exact") };
        assert_eq!(r.replay(), "SIM_SEED=0x2a SIM_CASES=7 cargo test -p simulator --test t -- x --exact");
    }

    #[test]
    fn seeds_parse_in_both_bases() {
        assert_eq!(parse_seed("0x10"), Some(16));
        assert_eq!(parse_seed(" 17 "), Some(17));
        assert_eq!(parse_seed("zz"), None);
    }
}
