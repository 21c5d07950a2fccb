//! The slice of the entity store one request needs.
//!
//! Cedar's `Entities` recomputes the transitive closure of the whole store whenever entities
//! are added, so merging the request's principal chain into every bundle entity costs time
//! proportional to the store. A request can only reach: the entities it names (principal
//! chain, resource, action), their ancestors, entities their attributes and tags point to,
//! and entities written literally in a policy. The slice is those, closed under the same
//! rules, computed per static entity once at load time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use cedar_policy::{Entities, Entity, EntityUid, EvalResult, PolicySet};

/// Per static entity, every static entity a request touching it may reach (itself included).
#[derive(Debug, Clone, Default)]
pub struct Reach {
    reach: HashMap<EntityUid, Vec<EntityUid>>,
    /// Entities written literally in policy conditions: part of every slice.
    always: Vec<EntityUid>,
}

fn entity_refs(value: &EvalResult, out: &mut Vec<EntityUid>) {
    match value {
        EvalResult::EntityUid(uid) => out.push(uid.clone()),
        EvalResult::Set(set) => set.iter().for_each(|v| entity_refs(v, out)),
        EvalResult::Record(record) => record.iter().for_each(|(_, v)| entity_refs(v, out)),
        EvalResult::Bool(_)
        | EvalResult::Long(_)
        | EvalResult::String(_)
        | EvalResult::ExtensionValue(_) => {}
    }
}

/// Entity literals (`{"__entity": {"type", "id"}}`) in a policy's JSON form.
fn literal_refs(json: &serde_json::Value, out: &mut Vec<EntityUid>) {
    match json {
        serde_json::Value::Object(map) => {
            if let Some(literal) = map.get("__entity")
                && let Ok(uid) = EntityUid::from_json(literal.clone())
            {
                out.push(uid);
            }
            map.values().for_each(|v| literal_refs(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| literal_refs(v, out)),
        _ => {}
    }
}

impl Reach {
    /// Computes the reach of every entity in `store` and the policies' entity literals.
    pub fn new(store: &Entities, policies: &PolicySet) -> Reach {
        // Direct edges: ancestors (already transitively closed by Cedar) and references
        // from attribute and tag values.
        let mut direct: HashMap<EntityUid, Vec<EntityUid>> = HashMap::new();
        for entity in store.iter() {
            let uid = entity.uid();
            let mut edges: Vec<EntityUid> = store
                .ancestors(&uid)
                .map(|a| a.cloned().collect())
                .unwrap_or_default();
            for (_, value) in entity.attrs().chain(entity.tags()) {
                if let Ok(value) = value {
                    entity_refs(&value, &mut edges);
                }
            }
            direct.insert(uid, edges);
        }
        let mut reach = HashMap::with_capacity(direct.len());
        for uid in direct.keys() {
            let mut seen = HashSet::new();
            let mut work = vec![uid.clone()];
            while let Some(next) = work.pop() {
                if store.get(&next).is_none() || !seen.insert(next.clone()) {
                    continue;
                }
                if let Some(edges) = direct.get(&next) {
                    work.extend(edges.iter().cloned());
                }
            }
            reach.insert(uid.clone(), seen.into_iter().collect());
        }
        let mut always = Vec::new();
        for policy in policies.policies() {
            if let Ok(json) = policy.to_json() {
                literal_refs(&json, &mut always);
            }
        }
        always.retain(|uid| store.get(uid).is_some());
        always.sort_by_key(|uid| uid.to_string());
        always.dedup();
        Reach { reach, always }
    }

    /// The entities for one request: `request_entities` (derived from the input; a static
    /// entity with the same uid replaces one) plus every static entity reachable from them,
    /// from `roots` (the action) and from the policies' literals.
    pub fn slice(
        &self,
        store: &Entities,
        request_entities: Vec<Entity>,
        roots: &[&EntityUid],
    ) -> Result<Entities, String> {
        let mut seen: HashSet<EntityUid> = HashSet::new();
        let mut out: Vec<Entity> = Vec::with_capacity(request_entities.len() + 8);
        let mut static_roots: Vec<EntityUid> = roots.iter().map(|uid| (*uid).clone()).collect();
        static_roots.extend(self.always.iter().cloned());
        for entity in request_entities {
            let uid = entity.uid();
            if store.get(&uid).is_some() {
                static_roots.push(uid);
                continue;
            }
            let (uid, _attrs, parents) = entity.clone().into_inner();
            static_roots.extend(parents);
            if seen.insert(uid) {
                out.push(entity);
            }
        }
        for root in &static_roots {
            let Some(reachable) = self.reach.get(root) else {
                continue;
            };
            for uid in reachable {
                if seen.contains(uid) {
                    continue;
                }
                if let Some(entity) = store.get(uid) {
                    seen.insert(uid.clone());
                    out.push(entity.clone());
                }
            }
        }
        Entities::from_entities(out, None).map_err(|e| format!("cannot build entities: {e}"))
    }
}

/// Principal, resource and entity slice of one (principal, resource, action).
#[derive(Debug)]
pub struct Sliced {
    /// The principal's uid.
    pub principal: EntityUid,
    /// The resource's uid.
    pub resource: EntityUid,
    /// The entities the request can reach.
    pub entities: Arc<Entities>,
}

/// Most slices kept per snapshot; the cache is emptied when full, so a flood of distinct
/// principals costs rebuilds, never memory.
const MAX_SLICES: usize = 4096;

/// Slices by the JSON of (principal, resource, action).
#[derive(Debug, Default)]
pub struct SliceCache {
    slices: Mutex<HashMap<String, Arc<Sliced>>>,
}

impl SliceCache {
    /// The slice for a key, if cached.
    pub fn get(&self, key: &str) -> Option<Arc<Sliced>> {
        self.slices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Caches a slice.
    pub fn insert(&self, key: String, sliced: Arc<Sliced>) {
        let mut slices = self.slices.lock().unwrap_or_else(PoisonError::into_inner);
        if slices.len() >= MAX_SLICES {
            slices.clear();
        }
        slices.insert(key, sliced);
    }
}
