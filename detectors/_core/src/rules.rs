//! The rules' scoring: paths of threshold conditions over a subject's
//! features, compiled from the declarations in `detectors/rules/`.
//!
//! A condition's ratio is `value / threshold` (`>=`) or `threshold / value`
//! (`<=`), 0 when the feature is missing or NaN, capped at the rule's `cap`;
//! an unmet *gate* counts 0. A path's strength is its weakest ratio and a
//! rule's is its strongest path's (`detectors/base.py` explains the scale).

use serde::{Deserialize, Serialize};

/// `feature >= threshold` (`ge`) or `feature <= threshold`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cond {
    pub feature: String,
    pub ge: bool,
    pub threshold: f64,
    pub gate: bool,
}

/// One rule: alternative paths, each a conjunction of conditions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RuleSet {
    pub paths: Vec<Vec<Cond>>,
    pub cap: f64,
}

/// `r / (1 + r)` for a positive ratio, else 0 (`detectors.base.squash`).
pub fn squash(r: f64) -> f64 {
    if r > 0.0 {
        r / (1.0 + r)
    } else {
        0.0
    }
}

impl RuleSet {
    /// The strongest path's strength and its index (the first of equals).
    pub fn best(&self, get: impl Fn(&str) -> Option<f64>) -> (f64, usize) {
        let (mut best, mut best_i) = (-1.0, 0);
        for (i, path) in self.paths.iter().enumerate() {
            let mut r = self.cap;
            for c in path {
                let mut q = match get(&c.feature) {
                    None => 0.0,
                    Some(v) if v.is_nan() => 0.0,
                    Some(v) if c.ge => {
                        if c.threshold != 0.0 {
                            v / c.threshold
                        } else {
                            1.0
                        }
                    }
                    Some(v) => {
                        if v > 0.0 {
                            c.threshold / v
                        } else {
                            100.0
                        }
                    }
                };
                if c.gate && q < 1.0 {
                    q = 0.0;
                }
                if q < r {
                    r = q;
                }
            }
            if r > best {
                best = r;
                best_i = i;
            }
        }
        (best, best_i)
    }

    /// The rule's score in `[0, 1)`.
    pub fn score(&self, get: impl Fn(&str) -> Option<f64>) -> f64 {
        squash(self.best(get).0)
    }
}

/// Of `rules`, the first with the highest score above 0, and that score
/// (`None`, 0 when none scores).
pub fn strongest(rules: &[RuleSet], get: impl Fn(&str) -> Option<f64>) -> (Option<usize>, f64) {
    let (mut which, mut score) = (None, 0.0);
    for (i, r) in rules.iter().enumerate() {
        let s = r.score(&get);
        if s > score {
            which = Some(i);
            score = s;
        }
    }
    (which, score)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(feature: &str, ge: bool, threshold: f64, gate: bool) -> Cond {
        Cond {
            feature: feature.into(),
            ge,
            threshold,
            gate,
        }
    }

    #[test]
    fn weakest_condition_of_the_strongest_path() {
        let rule = RuleSet {
            paths: vec![
                vec![
                    cond("users", true, 10.0, false),
                    cond("share", false, 0.5, false),
                ],
                vec![cond("fresh", true, 4.0, true)],
            ],
            cap: 20.0,
        };
        let x = |users: f64, share: f64, fresh: f64| {
            move |f: &str| match f {
                "users" => Some(users),
                "share" => Some(share),
                "fresh" => Some(fresh),
                _ => None,
            }
        };
        // path 0: min(30/10, 0.5/0.25) = 2; path 1: gate unmet -> 0
        assert_eq!(rule.best(x(30.0, 0.25, 1.0)), (2.0, 0));
        assert_eq!(rule.score(x(30.0, 0.25, 1.0)), 2.0 / 3.0);
        // share <= 0.5 with share 0: 100, capped by users' ratio
        assert_eq!(rule.best(x(50.0, 0.0, 0.0)), (5.0, 0));
        // a met gate counts its ratio
        assert_eq!(rule.best(x(1.0, 1.0, 8.0)), (2.0, 1));
        assert_eq!(rule.best(|_| None), (0.0, 0));
        assert_eq!(rule.best(|_| Some(f64::NAN)), (0.0, 0));
    }

    #[test]
    fn strongest_prefers_the_first_of_equals() {
        let a = RuleSet {
            paths: vec![vec![cond("v", true, 1.0, false)]],
            cap: 20.0,
        };
        let rules = vec![a.clone(), a];
        assert_eq!(strongest(&rules, |_| Some(3.0)), (Some(0), 0.75));
        assert_eq!(strongest(&rules, |_| Some(0.0)), (None, 0.0));
    }
}
