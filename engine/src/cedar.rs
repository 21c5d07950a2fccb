//! The Cedar backend (cedar-policy): authorisation of a principal doing an action on a
//! resource in a context.
//!
//! Policies are validated strictly against Sluice's base schema plus the bundle's schema
//! fragments before anything becomes active. Policy ids come from `@id("...")`, so reasons
//! stay stable when files are edited; a policy without one gets `<file>#policyN`.

pub mod mapping;
mod slice;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Authorizer, Decision as CedarDecision, Entities, EntityUid, Policy, PolicyId,
    PolicySet, Request, Schema, SchemaFragment, ValidationMode, ValidationWarning, Validator,
};

use crate::bundle::{Bundle, SourceFile};
use crate::decision::{Backend, Effect, Reason};
use crate::diagnostic::Diagnostic;
use crate::input::DecisionInput;

/// Sluice's base schema: the entity types, actions and context every input maps to.
pub const BASE_SCHEMA: &str = include_str!("../../schemas/sluice.cedarschema");

/// Label of the base schema in diagnostics.
pub const BASE_SCHEMA_FILE: &str = "<sluice base schema>";

/// Where a policy came from, for reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyOrigin {
    /// The file, relative to the bundle root.
    pub file: String,
    /// The `@reason("...")` annotation, if any.
    pub reason: Option<String>,
    /// Whether the id came from `@id("...")` rather than the policy's position.
    pub explicit_id: bool,
    /// Byte offset of the policy in its file.
    pub offset: usize,
}

/// Validated Cedar policies, schema and entities, shareable across threads.
#[derive(Debug)]
pub struct CedarBackend {
    policies: PolicySet,
    entities: Entities,
    origins: HashMap<PolicyId, PolicyOrigin>,
    actions: HashSet<String>,
    schema: Schema,
    reach: slice::Reach,
    slices: slice::SliceCache,
    /// For each action the schema declares, the policies whose action scope can match it.
    by_action: HashMap<EntityUid, PolicySet>,
}

/// What Cedar said about one input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CedarOutcome {
    /// Permit policies that were satisfied (when the decision is allow).
    pub permits: Vec<Reason>,
    /// Forbid policies that were satisfied.
    pub forbids: Vec<Reason>,
    /// Policies that failed to evaluate, and mapping errors.
    pub errors: Vec<Reason>,
}

/// Reads the first labelled offset of a miette diagnostic.
pub(crate) fn miette_offset(diagnostic: &dyn miette::Diagnostic) -> Option<usize> {
    diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset())
}

/// A miette diagnostic's message with its help, on one line.
pub(crate) fn miette_message(diagnostic: &dyn miette::Diagnostic) -> String {
    let mut message = diagnostic.to_string();
    let mut source = std::error::Error::source(diagnostic);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    if let Some(help) = diagnostic.help() {
        message.push_str(" (");
        message.push_str(&help.to_string());
        message.push(')');
    }
    message
}

/// Parses the policies of one file into `set`. `rename` maps Cedar's default id
/// (`policyN`, numbered within the file) to the id used when there is no `@id`.
pub fn parse_policies(
    file: &SourceFile,
    rename: &dyn Fn(&str) -> String,
    set: &mut PolicySet,
    origins: &mut HashMap<PolicyId, PolicyOrigin>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let parsed = match PolicySet::from_str(&file.text) {
        Ok(parsed) => parsed,
        Err(errors) => {
            for error in errors.iter() {
                let message = miette_message(error);
                diagnostics.push(match miette_offset(error) {
                    Some(offset) => Diagnostic::at_offset(&file.path, &file.text, offset, message),
                    None => Diagnostic::file(&file.path, message),
                });
            }
            return;
        }
    };
    if parsed.templates().next().is_some() {
        diagnostics.push(Diagnostic::file(
            &file.path,
            "policy templates are not supported in a policy directory; write concrete policies",
        ));
    }
    let mut policies: Vec<&Policy> = parsed.policies().collect();
    // Cedar numbers policies in file order; keep that order for stable output.
    policies.sort_by_key(|p| {
        p.id()
            .to_string()
            .trim_start_matches("policy")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    let mut search_from = 0;
    for policy in policies {
        let id = match policy.annotation("id") {
            Some(id) => id.to_string(),
            None => rename(policy.id().as_ref()),
        };
        let id = PolicyId::new(id);
        let renamed = policy.new_id(id.clone());
        if let Err(e) = set.add(renamed) {
            let previous = origins.get(&id).map(|o| o.file.clone()).unwrap_or_default();
            diagnostics.push(Diagnostic::file(
                &file.path,
                format!("policy id `{id}` is already used (in `{previous}`): {e}"),
            ));
            continue;
        }
        // Policies come in file order and keep their source text, so each is found after
        // the previous one.
        let text = policy.to_string();
        let offset = file
            .text
            .get(search_from..)
            .and_then(|rest| rest.find(text.as_str()))
            .map(|at| search_from + at)
            .unwrap_or(search_from);
        search_from = offset.saturating_add(text.len()).min(file.text.len());
        origins.insert(
            id,
            PolicyOrigin {
                file: file.path.clone(),
                reason: policy.annotation("reason").map(str::to_string),
                explicit_id: policy.annotation("id").is_some(),
                offset,
            },
        );
    }
}

/// Builds the schema from the base schema and the bundle's fragments.
pub fn build_schema(
    base: Option<&str>,
    fragments: &[SourceFile],
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Schema> {
    let mut parsed = Vec::new();
    let sources = base
        .map(|text| SourceFile {
            path: BASE_SCHEMA_FILE.to_string(),
            text: text.to_string(),
        })
        .into_iter()
        .chain(fragments.iter().cloned());
    for file in sources {
        let result = if file.path.ends_with(".json") {
            SchemaFragment::from_json_str(&file.text)
                .map_err(|e| Diagnostic::file(&file.path, miette_message(&e)))
        } else {
            SchemaFragment::from_cedarschema_str(&file.text)
                .map(|(fragment, _warnings)| fragment)
                .map_err(|e| match miette_offset(&e) {
                    Some(offset) => {
                        Diagnostic::at_offset(&file.path, &file.text, offset, miette_message(&e))
                    }
                    None => Diagnostic::file(&file.path, miette_message(&e)),
                })
        };
        match result {
            Ok(fragment) => parsed.push(fragment),
            Err(d) => diagnostics.push(d),
        }
    }
    if !diagnostics.is_empty() {
        return None;
    }
    match Schema::from_schema_fragments(parsed) {
        Ok(schema) => Some(schema),
        Err(e) => {
            let file = fragments
                .first()
                .map(|f| f.path.clone())
                .unwrap_or_else(|| BASE_SCHEMA_FILE.to_string());
            diagnostics.push(Diagnostic::file(file, miette_message(&e)));
            None
        }
    }
}

/// Validates policies strictly; each error points at the policy's file and position.
pub fn validate(
    schema: &Schema,
    policies: &PolicySet,
    origins: &HashMap<PolicyId, PolicyOrigin>,
    files: &[SourceFile],
    diagnostics: &mut Vec<Diagnostic>,
) {
    let first_new = diagnostics.len();
    validate_unsorted(schema, policies, origins, files, diagnostics);
    // Cedar reports in hash order; sort so output is stable from run to run.
    if let Some(new) = diagnostics.get_mut(first_new..) {
        new.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
        });
    }
}

fn validate_unsorted(
    schema: &Schema,
    policies: &PolicySet,
    origins: &HashMap<PolicyId, PolicyOrigin>,
    files: &[SourceFile],
    diagnostics: &mut Vec<Diagnostic>,
) {
    let result = Validator::new(schema.clone()).validate(policies, ValidationMode::Strict);
    let at_policy = |id: &PolicyId, problem: &dyn miette::Diagnostic| {
        let file = origins.get(id).map(|o| o.file.clone()).unwrap_or_default();
        let text = files
            .iter()
            .find(|f| f.path == file)
            .map(|f| f.text.as_str())
            .unwrap_or_default();
        let message = miette_message(problem);
        match miette_offset(problem) {
            Some(offset) => Diagnostic::at_offset(&file, text, offset, message),
            None => Diagnostic::file(&file, message),
        }
    };
    for error in result.validation_errors() {
        diagnostics.push(at_policy(error.policy_id(), error));
    }
    // A policy whose actions can never apply to its principal and resource is a scope bug
    // that would silently never permit or forbid anything. Cedar reported it as a
    // validation error until 4.x made it a warning; Sluice (and the Cedar conformance suite)
    // keep it an error. Other warnings (an always-false condition, confusable characters)
    // stay warnings.
    for warning in result.validation_warnings() {
        if !matches!(warning, ValidationWarning::InvalidActionApplication(_)) {
            continue;
        }
        diagnostics.push(at_policy(warning.policy_id(), warning));
    }
}

/// Parses entity files (each a JSON array of Cedar entities) against the schema and adds the
/// schema's action entities, so `action in Action::"group"` works.
pub fn load_entities(
    schema: &Schema,
    files: &[SourceFile],
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Entities> {
    let mut all = Vec::new();
    for file in files {
        match serde_json::from_str::<serde_json::Value>(&file.text) {
            Ok(serde_json::Value::Array(items)) => {
                // Parse each file alone first, so an error names its file.
                if let Err(e) =
                    Entities::from_json_value(serde_json::Value::Array(items.clone()), Some(schema))
                {
                    diagnostics.push(Diagnostic::file(&file.path, miette_message(&e)));
                    continue;
                }
                all.extend(items);
            }
            Ok(_) => diagnostics.push(Diagnostic::file(
                &file.path,
                "an entities file must be a JSON array of Cedar entities",
            )),
            Err(e) => diagnostics.push(crate::bundle::json_diagnostic(file, &e)),
        }
    }
    let entities = match Entities::from_json_value(serde_json::Value::Array(all), Some(schema)) {
        Ok(entities) => entities,
        Err(e) => {
            let file = files.first().map(|f| f.path.clone()).unwrap_or_default();
            diagnostics.push(Diagnostic::file(file, miette_message(&e)));
            return None;
        }
    };
    let actions = match schema.action_entities() {
        Ok(actions) => actions,
        Err(e) => {
            diagnostics.push(Diagnostic::file(BASE_SCHEMA_FILE, miette_message(&e)));
            return None;
        }
    };
    let action_list: Vec<_> = actions
        .iter()
        .filter(|a| !entities.get(&a.uid()).is_some_and(|_| true))
        .cloned()
        .collect();
    match entities.add_entities(action_list, None) {
        Ok(entities) => Some(entities),
        Err(e) => {
            diagnostics.push(Diagnostic::file(BASE_SCHEMA_FILE, miette_message(&e)));
            None
        }
    }
}

impl CedarBackend {
    /// Parses, validates and loads the bundle's Cedar; `None` when it has no Cedar policy.
    pub fn compile(bundle: &Bundle) -> Result<Option<CedarBackend>, Vec<Diagnostic>> {
        if bundle.cedar.is_empty() {
            return Ok(None);
        }
        let mut diagnostics = Vec::new();
        let mut policies = PolicySet::new();
        let mut origins = HashMap::new();
        for file in &bundle.cedar {
            let rename = |default: &str| format!("{}#{default}", file.path);
            parse_policies(file, &rename, &mut policies, &mut origins, &mut diagnostics);
        }
        let schema = build_schema(Some(BASE_SCHEMA), &bundle.cedar_schemas, &mut diagnostics);
        let Some(schema) = schema else {
            return Err(diagnostics);
        };
        if diagnostics.is_empty() {
            validate(
                &schema,
                &policies,
                &origins,
                &bundle.cedar,
                &mut diagnostics,
            );
        }
        let entities = load_entities(&schema, &bundle.cedar_entities, &mut diagnostics);
        match entities {
            Some(entities) if diagnostics.is_empty() => {
                let actions = schema
                    .actions()
                    .map(|uid| uid.id().unescaped().to_string())
                    .collect();
                let reach = slice::Reach::new(&entities, &policies);
                let by_action = policies_by_action(&schema, &policies);
                Ok(Some(CedarBackend {
                    policies,
                    entities,
                    origins,
                    actions,
                    schema,
                    reach,
                    slices: slice::SliceCache::default(),
                    by_action,
                }))
            }
            _ => Err(diagnostics),
        }
    }

    /// Policies without `@id`, as `(file, id, offset)`: their reason ids follow their
    /// position and change when policies are reordered.
    pub fn policies_without_id(&self) -> Vec<(&str, String, usize)> {
        let mut out: Vec<(&str, String, usize)> = self
            .origins
            .iter()
            .filter(|(_, origin)| !origin.explicit_id)
            .map(|(id, origin)| (origin.file.as_str(), id.to_string(), origin.offset))
            .collect();
        out.sort();
        out
    }

    /// The validated policies.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The validated schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The static entities (from the bundle and the schema's actions).
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// Action ids the schema declares.
    pub fn actions(&self) -> &HashSet<String> {
        &self.actions
    }

    /// Builds the request and the entities for an input. The entities depend only on the
    /// principal, the resource and the action, which repeat from request to request, so the
    /// slice is cached per snapshot (a reload starts a new cache).
    pub fn request(&self, input: &DecisionInput) -> Result<(Request, Arc<Entities>), String> {
        let (action, with_arguments) = mapping::action(input, &self.actions)?;
        self.request_for(input, action, with_arguments)
    }

    /// [`CedarBackend::request`] with the input's action already mapped.
    fn request_for(
        &self,
        input: &DecisionInput,
        action: EntityUid,
        with_arguments: bool,
    ) -> Result<(Request, Arc<Entities>), String> {
        let context = mapping::context(input, with_arguments)?;
        let key = serde_json::to_string(&(&input.principal, &input.resource, action.to_string()))
            .map_err(|e| format!("cannot key the request: {e}"))?;
        let cached = self.slices.get(&key);
        let sliced = match cached {
            Some(sliced) => sliced,
            None => {
                let (principal, resource, entities) = mapping::entities(input)?;
                // Entities the bundle defines win over the ones derived from the input; only
                // what the request can reach is handed to the authorizer.
                let entities = self.reach.slice(&self.entities, entities, &[&action])?;
                let sliced = Arc::new(slice::Sliced {
                    principal,
                    resource,
                    entities: Arc::new(entities),
                });
                self.slices.insert(key, sliced.clone());
                sliced
            }
        };
        let request = Request::new(
            sliced.principal.clone(),
            action,
            sliced.resource.clone(),
            context,
            None,
        )
        .map_err(|e| format!("cannot build request: {e}"))?;
        Ok((request, sliced.entities.clone()))
    }

    /// Authorises one input.
    pub fn evaluate(&self, input: &DecisionInput) -> CedarOutcome {
        let mut outcome = CedarOutcome::default();
        // No policy can match this action: Cedar has nothing to say (its implicit deny is
        // not a forbid), so neither the request nor the authorizer is worth building.
        let mapped = mapping::action(input, &self.actions);
        if let Ok((action, _)) = &mapped
            && self.by_action.get(action).is_some_and(PolicySet::is_empty)
        {
            return outcome;
        }
        let request = mapped
            .and_then(|(action, with_arguments)| self.request_for(input, action, with_arguments));
        let (request, entities) = match request {
            Ok(parts) => parts,
            Err(message) => {
                outcome.errors.push(Reason {
                    backend: Backend::Cedar,
                    effect: Effect::Error,
                    file: None,
                    rule: "<request>".to_string(),
                    message,
                });
                return outcome;
            }
        };
        let policies = request
            .action()
            .and_then(|action| self.by_action.get(action))
            .unwrap_or(&self.policies);
        let response = Authorizer::new().is_authorized(&request, policies, &entities);
        let mut ids: Vec<&PolicyId> = response.diagnostics().reason().collect();
        ids.sort_by_key(|id| id.to_string());
        for id in ids {
            let origin = self.origins.get(id);
            let (effect, verb) = match response.decision() {
                CedarDecision::Allow => (Effect::Allow, "permitted"),
                CedarDecision::Deny => (Effect::Deny, "forbidden"),
            };
            let reason = Reason {
                backend: Backend::Cedar,
                effect,
                file: origin.map(|o| o.file.clone()),
                rule: id.to_string(),
                message: origin
                    .and_then(|o| o.reason.clone())
                    .unwrap_or_else(|| format!("{verb} by Cedar policy `{id}`")),
            };
            match effect {
                Effect::Allow => outcome.permits.push(reason),
                _ => outcome.forbids.push(reason),
            }
        }
        for error in response.diagnostics().errors() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = error;
            let id = e.policy_id();
            outcome.errors.push(Reason {
                backend: Backend::Cedar,
                effect: Effect::Error,
                file: self.origins.get(id).map(|o| o.file.clone()),
                rule: id.to_string(),
                message: format!("Cedar policy `{id}` failed to evaluate: {}", e.inner()),
            });
        }
        outcome
    }
}

/// Splits the policies by the declared action they can apply to, so that authorising a
/// request evaluates only those (the authorizer otherwise checks every policy's scope, and
/// most of a bundle is about other actions). A policy scoped to `action in Group` belongs to
/// every action in the group; an unscoped one to every action. Actions the schema does not
/// declare keep the whole set.
fn policies_by_action(schema: &Schema, policies: &PolicySet) -> HashMap<EntityUid, PolicySet> {
    let hierarchy = schema
        .action_entities()
        .unwrap_or_else(|_| Entities::empty());
    let mut by_action = HashMap::new();
    for action in schema.actions() {
        let mut set = PolicySet::new();
        for policy in policies.policies() {
            let applies = match policy.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(uid) => &uid == action,
                ActionConstraint::In(groups) => groups
                    .iter()
                    .any(|group| group == action || hierarchy.is_ancestor_of(group, action)),
            };
            // Ids are unique in the source set, so adding cannot fail.
            if applies && set.add(policy.clone()).is_err() {
                return HashMap::new();
            }
        }
        by_action.insert(action.clone(), set);
    }
    by_action
}

#[cfg(test)]
mod tests;
