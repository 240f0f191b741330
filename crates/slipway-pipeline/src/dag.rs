//! The jobs of a pipeline as a directed acyclic graph by `needs`. Building it finds
//! every unknown, repeated and self need, and every cycle, each at the entry that
//! causes it, so the config can point at that line.

/// One problem with the `needs` of a job: `job` and `need` index the job and the entry
/// of its `needs` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DagError {
    Unknown {
        job: usize,
        need: usize,
        name: String,
    },
    Itself {
        job: usize,
        need: usize,
    },
    Repeated {
        job: usize,
        need: usize,
        name: String,
    },
    /// The entry closes a cycle; `path` names it from its first job back to that job.
    Cycle {
        job: usize,
        need: usize,
        path: Vec<String>,
    },
}

/// The validated graph: for each job (in the pipeline's order) the jobs it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    names: Vec<String>,
    needs: Vec<Vec<usize>>,
}

/// Depth-first search state of one job.
#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    OnPath,
    Done,
}

impl Dag {
    /// `jobs` as (name, the names it needs), in the pipeline's order.
    pub fn new(jobs: &[(&str, Vec<&str>)]) -> Result<Dag, Vec<DagError>> {
        let names: Vec<String> = jobs.iter().map(|(n, _)| (*n).to_owned()).collect();
        let mut errors = Vec::new();
        // (target job, index of the entry) per job.
        let mut edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); jobs.len()];
        for (job, (name, needs)) in jobs.iter().enumerate() {
            for (need, target) in needs.iter().enumerate() {
                if target == name {
                    errors.push(DagError::Itself { job, need });
                } else if needs[..need].contains(target) {
                    errors.push(DagError::Repeated {
                        job,
                        need,
                        name: (*target).to_owned(),
                    });
                } else if let Some(to) = names.iter().position(|n| n == target) {
                    edges[job].push((to, need));
                } else {
                    errors.push(DagError::Unknown {
                        job,
                        need,
                        name: (*target).to_owned(),
                    });
                }
            }
        }
        let targets: Vec<Vec<usize>> = edges
            .iter()
            .map(|e| e.iter().map(|&(to, _)| to).collect())
            .collect();
        errors.extend(find_cycles(&targets).into_iter().map(|c| DagError::Cycle {
            job: c.node,
            need: edges[c.node][c.edge].1,
            path: c.path.into_iter().map(|n| names[n].clone()).collect(),
        }));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Dag {
            names,
            needs: targets,
        })
    }

    /// The graph of jobs given as (name, the names it needs).
    pub fn of<'j>(
        jobs: impl IntoIterator<Item = (&'j str, &'j [String])>,
    ) -> Result<Dag, Vec<DagError>> {
        let jobs: Vec<(&str, Vec<&str>)> = jobs
            .into_iter()
            .map(|(name, needs)| (name, needs.iter().map(String::as_str).collect()))
            .collect();
        Dag::new(&jobs)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, job: usize) -> &str {
        &self.names[job]
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The jobs `job` lists under `needs`.
    pub fn needs(&self, job: usize) -> &[usize] {
        &self.needs[job]
    }

    /// Every job `job` needs, directly or through others, in no particular order.
    pub fn ancestors(&self, job: usize) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut stack = self.needs[job].clone();
        let mut out = Vec::new();
        while let Some(j) = stack.pop() {
            if !std::mem::replace(&mut seen[j], true) {
                out.push(j);
                stack.extend_from_slice(&self.needs[j]);
            }
        }
        out
    }

    /// The jobs in an order where each comes after every job it needs; among jobs that
    /// could go in either order, the pipeline's order.
    pub fn order(&self) -> Vec<usize> {
        let mut placed = vec![false; self.len()];
        let mut out = Vec::with_capacity(self.len());
        while out.len() < self.len() {
            let before = out.len();
            for job in 0..self.len() {
                if !placed[job] && self.needs[job].iter().all(|&n| placed[n]) {
                    placed[job] = true;
                    out.push(job);
                }
            }
            if out.len() == before {
                break; // unreachable for a validated graph
            }
        }
        out
    }
}

/// A cycle [`find_cycles`] found: the edge that closes it, and the nodes along it from
/// the first back to that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub node: usize,
    /// Index into `edges[node]`.
    pub edge: usize,
    pub path: Vec<usize>,
}

/// Every cycle of a graph given as each node's edges: a depth-first search in node
/// order, where each edge back into the current path closes a cycle, reported once at
/// that edge. Shared with the config's check of environments' `requires`.
pub fn find_cycles(edges: &[Vec<usize>]) -> Vec<Cycle> {
    let mut found = Vec::new();
    let mut marks = vec![Mark::New; edges.len()];
    for start in 0..edges.len() {
        if marks[start] != Mark::New {
            continue;
        }
        let mut path = vec![start];
        let mut next_edge = vec![0usize];
        marks[start] = Mark::OnPath;
        while let (Some(&node), Some(edge)) = (path.last(), next_edge.last_mut()) {
            let Some(&to) = edges[node].get(*edge) else {
                marks[node] = Mark::Done;
                path.pop();
                next_edge.pop();
                continue;
            };
            let index = *edge;
            *edge += 1;
            match marks[to] {
                Mark::New => {
                    marks[to] = Mark::OnPath;
                    path.push(to);
                    next_edge.push(0);
                }
                Mark::OnPath => {
                    let from = path.iter().position(|&n| n == to).unwrap_or(0);
                    found.push(Cycle {
                        node,
                        edge: index,
                        path: path[from..].iter().copied().chain([to]).collect(),
                    });
                }
                Mark::Done => {}
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_orders_each_job_after_its_needs() {
        let dag = Dag::new(&[
            ("deploy", vec!["test", "lint"]),
            ("build", vec![]),
            ("test", vec!["build"]),
            ("lint", vec!["build"]),
        ])
        .unwrap();
        let order: Vec<&str> = dag.order().into_iter().map(|j| dag.name(j)).collect();
        assert_eq!(order, ["build", "test", "lint", "deploy"]);
        let mut ancestors: Vec<&str> = dag.ancestors(0).into_iter().map(|j| dag.name(j)).collect();
        ancestors.sort();
        assert_eq!(ancestors, ["build", "lint", "test"]);
    }

    #[test]
    fn every_bad_need_is_reported_at_its_entry() {
        let errors = Dag::new(&[
            ("a", vec!["c"]),
            ("b", vec!["a", "b", "a", "nope"]),
            ("c", vec!["b"]),
        ])
        .unwrap_err();
        assert_eq!(
            errors,
            [
                DagError::Itself { job: 1, need: 1 },
                DagError::Repeated {
                    job: 1,
                    need: 2,
                    name: "a".into()
                },
                DagError::Unknown {
                    job: 1,
                    need: 3,
                    name: "nope".into()
                },
                DagError::Cycle {
                    job: 1,
                    need: 0,
                    path: vec!["a".into(), "c".into(), "b".into(), "a".into()]
                },
            ]
        );
    }
}
