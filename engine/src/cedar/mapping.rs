//! How a decision input becomes a Cedar request: principal, action, resource, context and
//! the entities they need. The shapes match `schemas/sluice.cedarschema`; a test validates
//! requests built here against that schema.
//!
//! Values are built as Cedar expressions directly, never through Cedar's JSON format, so a
//! tool argument such as `{"__entity": ...}` stays a plain record and cannot forge an entity.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{Context, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use serde_json::Value as Json;

use crate::input::{DecisionInput, ResourceKind};

/// The namespace of every Sluice entity type and action.
pub const NAMESPACE: &str = "Sluice";

/// The parts of a Cedar request for one input.
#[derive(Debug)]
pub struct Mapped {
    /// `Sluice::Key::"<key_id>"`.
    pub principal: EntityUid,
    /// `Sluice::Action::"<action>"`, or the per-tool action when the schema declares it.
    pub action: EntityUid,
    /// `Sluice::<Kind>::"<id>"`.
    pub resource: EntityUid,
    /// The context.
    pub context: Context,
    /// Entities for the principal chain and the resource.
    pub entities: Vec<Entity>,
}

/// The per-tool action id for a tool call, e.g. `mcp.tools.call:github.create_issue`.
pub fn tool_action_id(input: &DecisionInput) -> String {
    format!("{}:{}", input.action, input.resource.id)
}

/// The entity types the mapping uses, parsed once: parsing a name runs Cedar's parser,
/// and every evaluation names at least its action.
static TYPES: std::sync::LazyLock<HashMap<&'static str, EntityTypeName>> =
    std::sync::LazyLock::new(|| {
        [
            "Action",
            "Agent",
            "Datasource",
            "Key",
            "McpServer",
            "Memory",
            "Model",
            "Role",
            "Team",
            "Tool",
            "User",
        ]
        .into_iter()
        .filter_map(|name| Some((name, parse_type(name).ok()?)))
        .collect()
    });

fn parse_type(type_name: &str) -> Result<EntityTypeName, String> {
    EntityTypeName::from_str(&format!("{NAMESPACE}::{type_name}"))
        .map_err(|e| format!("invalid entity type `{type_name}`: {e}"))
}

/// Builds a uid in the Sluice namespace.
pub fn uid(type_name: &str, id: &str) -> Result<EntityUid, String> {
    let type_name = match TYPES.get(type_name) {
        Some(parsed) => parsed.clone(),
        None => parse_type(type_name)?,
    };
    Ok(EntityUid::from_type_name_and_id(
        type_name,
        EntityId::new(id),
    ))
}

/// Maps an input. `declared_actions` are the action ids the schema declares; a tool call
/// uses its per-tool action when declared, so policies can be written per tool, and then
/// carries the tool's `arguments` in the context.
pub fn map(input: &DecisionInput, declared_actions: &HashSet<String>) -> Result<Mapped, String> {
    let (action, with_arguments) = action(input, declared_actions)?;
    let context = context(input, with_arguments)?;
    let (principal, resource, entities) = entities(input)?;
    Ok(Mapped {
        principal,
        action,
        resource,
        context,
        entities,
    })
}

/// The action, and whether it is a per-tool action whose context carries `arguments`.
pub fn action(
    input: &DecisionInput,
    declared_actions: &HashSet<String>,
) -> Result<(EntityUid, bool), String> {
    let tool_action = tool_action_id(input);
    let per_tool = input.content.tool.is_some() || input.resource.kind == ResourceKind::Tool;
    let (action_id, with_arguments) = if per_tool && declared_actions.contains(&tool_action) {
        (tool_action, true)
    } else {
        (input.action.clone(), false)
    };
    Ok((uid("Action", &action_id)?, with_arguments))
}

/// The principal, the resource, and the entities for them (the principal's chain, the
/// resource and its server). They depend on the principal and resource alone.
pub fn entities(input: &DecisionInput) -> Result<(EntityUid, EntityUid, Vec<Entity>), String> {
    let p = &input.principal;
    if p.key_id.is_empty() {
        return Err("principal has no `key_id`".to_string());
    }
    let mut entities = Vec::new();
    let team = p.team.as_deref().map(|t| uid("Team", t)).transpose()?;
    let roles = p
        .roles
        .iter()
        .map(|r| uid("Role", r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut key_parents: HashSet<EntityUid> = roles.iter().cloned().collect();
    if let Some(team) = &team {
        key_parents.insert(team.clone());
        entities.push(Entity::with_uid(team.clone()));
    }
    for role in &roles {
        entities.push(Entity::with_uid(role.clone()));
    }
    let team_parent: HashSet<EntityUid> = team.iter().cloned().collect();
    if let Some(user) = &p.user {
        let user = uid("User", user)?;
        key_parents.insert(user.clone());
        entities.push(Entity::new_no_attrs(user, team_parent.clone()));
    }
    if let Some(agent) = &p.agent {
        let agent = uid("Agent", agent)?;
        key_parents.insert(agent.clone());
        entities.push(Entity::new_no_attrs(agent, team_parent.clone()));
    }
    let principal = uid("Key", &p.key_id)?;
    let mut key_attrs = HashMap::from([(
        "roles".to_string(),
        RestrictedExpression::new_set(
            p.roles
                .iter()
                .cloned()
                .map(RestrictedExpression::new_string),
        ),
    )]);
    for (name, value) in [("user", &p.user), ("agent", &p.agent), ("team", &p.team)] {
        if let Some(value) = value {
            key_attrs.insert(
                name.to_string(),
                RestrictedExpression::new_string(value.clone()),
            );
        }
    }
    entities.push(
        Entity::new_with_tags(
            principal.clone(),
            key_attrs,
            key_parents,
            tags(&p.attributes),
        )
        .map_err(|e| format!("cannot build principal entity: {e}"))?,
    );

    let r = &input.resource;
    if r.id.is_empty() {
        return Err("resource has no `id`".to_string());
    }
    let resource = uid(r.kind.cedar_type(), &r.id)?;
    let mut resource_attrs = HashMap::new();
    let mut resource_parents = HashSet::new();
    match r.kind {
        ResourceKind::Model => {
            if let Some(provider) = &r.provider {
                resource_attrs.insert(
                    "provider".to_string(),
                    RestrictedExpression::new_string(provider.clone()),
                );
            }
            if let Some(deployment) = &r.deployment {
                resource_attrs.insert(
                    "deployment".to_string(),
                    RestrictedExpression::new_string(deployment.clone()),
                );
            }
        }
        ResourceKind::Tool => {
            if let Some(server) = &r.server {
                resource_attrs.insert(
                    "server".to_string(),
                    RestrictedExpression::new_string(server.clone()),
                );
                let server_uid = uid("McpServer", server)?;
                resource_parents.insert(server_uid.clone());
                entities.push(Entity::with_uid(server_uid));
            }
        }
        ResourceKind::McpServer
        | ResourceKind::Agent
        | ResourceKind::Datasource
        | ResourceKind::Memory => {}
    }
    // No tags from the request: resource tags are trusted data from the policy directory.
    entities.push(
        Entity::new(resource.clone(), resource_attrs, resource_parents)
            .map_err(|e| format!("cannot build resource entity: {e}"))?,
    );

    Ok((principal, resource, entities))
}

/// The context of the request.
pub fn context(input: &DecisionInput, with_arguments: bool) -> Result<Context, String> {
    let f = &input.findings;
    let classes = |spans: &[crate::input::Span]| {
        let set: std::collections::BTreeSet<&str> =
            spans.iter().map(|s| s.class.as_str()).collect();
        RestrictedExpression::new_set(
            set.into_iter()
                .map(|c| RestrictedExpression::new_string(c.to_string())),
        )
    };
    let injection_pct = (f.injection.score.clamp(0.0, 1.0) * 100.0).round() as i64;
    let findings = record([
        ("pii_count", long(f.pii.len())),
        ("pii_classes", classes(&f.pii)),
        ("secret_count", long(f.secrets.len())),
        ("secret_classes", classes(&f.secrets)),
        (
            "injection_score",
            RestrictedExpression::new_long(injection_pct),
        ),
        ("injection_signals", strings(f.injection.signals.iter())),
        ("tool_poisoning_count", long(f.tool_poisoning.len())),
    ])?;
    let u = &input.usage;
    let cost_micro = if u.cost_usd.is_finite() {
        (u.cost_usd * 1_000_000.0)
            .round()
            .clamp(0.0, i64::MAX as f64) as i64
    } else {
        0
    };
    let usage = record([
        ("input_tokens", long_u64(u.input_tokens)),
        ("output_tokens", long_u64(u.output_tokens)),
        ("cost_micro_usd", RestrictedExpression::new_long(cost_micro)),
    ])?;
    let budget_used_pct = input
        .limits
        .iter()
        .filter(|l| l.kind == "cost_usd" && l.limit > 0.0 && l.used.is_finite())
        .map(|l| (l.used / l.limit * 100.0).round().clamp(0.0, 1e12) as i64)
        .max()
        .unwrap_or(0);
    let session = record([
        ("turn", long_u64(input.session.turn)),
        ("flags", strings(input.session.flags.iter())),
    ])?;
    let mut pairs = vec![
        (
            "surface".to_string(),
            RestrictedExpression::new_string(input.surface.as_str().to_string()),
        ),
        (
            "stream".to_string(),
            RestrictedExpression::new_bool(input.request.stream),
        ),
        ("findings".to_string(), findings),
        ("usage".to_string(), usage),
        (
            "budget_used_pct".to_string(),
            RestrictedExpression::new_long(budget_used_pct),
        ),
        ("session".to_string(), session),
    ];
    let is_tool_call = input.resource.kind == ResourceKind::Tool || input.content.tool.is_some();
    if is_tool_call {
        let (name, server) = match &input.content.tool {
            Some(tool) => (
                tool.name.clone(),
                tool.server
                    .clone()
                    .or_else(|| input.resource.server.clone()),
            ),
            None => (input.resource.id.clone(), input.resource.server.clone()),
        };
        pairs.push((
            "tool".to_string(),
            record([
                ("name", RestrictedExpression::new_string(name)),
                (
                    "server",
                    RestrictedExpression::new_string(server.unwrap_or_default()),
                ),
            ])?,
        ));
        if with_arguments {
            let arguments = input
                .content
                .tool
                .as_ref()
                .map(|t| t.arguments.clone())
                .unwrap_or(Json::Null);
            let arguments = match arguments {
                Json::Null => Json::Object(serde_json::Map::new()),
                other => other,
            };
            if let Some(expr) = json_to_expr(&arguments) {
                pairs.push(("arguments".to_string(), expr));
            }
        }
    }
    Context::from_pairs(pairs).map_err(|e| format!("cannot build context: {e}"))
}

fn record<const N: usize>(
    pairs: [(&str, RestrictedExpression); N],
) -> Result<RestrictedExpression, String> {
    RestrictedExpression::new_record(pairs.into_iter().map(|(k, v)| (k.to_string(), v)))
        .map_err(|e| format!("cannot build record: {e}"))
}

fn long(n: usize) -> RestrictedExpression {
    RestrictedExpression::new_long(i64::try_from(n).unwrap_or(i64::MAX))
}

fn long_u64(n: u64) -> RestrictedExpression {
    RestrictedExpression::new_long(i64::try_from(n).unwrap_or(i64::MAX))
}

fn strings<'a>(items: impl Iterator<Item = &'a String>) -> RestrictedExpression {
    let set: std::collections::BTreeSet<&String> = items.collect();
    RestrictedExpression::new_set(
        set.into_iter()
            .map(|s| RestrictedExpression::new_string(s.clone())),
    )
}

/// Free-form attributes as Cedar tags: strings as they are, anything else as its JSON text.
fn tags(
    attributes: &std::collections::BTreeMap<String, Json>,
) -> HashMap<String, RestrictedExpression> {
    attributes
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), RestrictedExpression::new_string(text))
        })
        .collect()
}

/// A JSON value as a Cedar value: integers as Long, other numbers as `decimal` when they fit
/// its four places, else as their text; `null` members are dropped (Cedar has no null).
pub fn json_to_expr(value: &Json) -> Option<RestrictedExpression> {
    match value {
        Json::Null => None,
        Json::Bool(b) => Some(RestrictedExpression::new_bool(*b)),
        Json::Number(n) => Some(match n.as_i64() {
            Some(i) => RestrictedExpression::new_long(i),
            None => {
                let text = n.to_string();
                let fits_decimal = n.as_f64().is_some_and(|f| f.abs() < 9.2e14)
                    && text
                        .split_once('.')
                        .is_some_and(|(_, frac)| frac.len() <= 4)
                    && !text.contains(['e', 'E']);
                if fits_decimal {
                    RestrictedExpression::new_decimal(text)
                } else {
                    RestrictedExpression::new_string(text)
                }
            }
        }),
        Json::String(s) => Some(RestrictedExpression::new_string(s.clone())),
        Json::Array(items) => Some(RestrictedExpression::new_set(
            items.iter().filter_map(json_to_expr),
        )),
        Json::Object(map) => RestrictedExpression::new_record(
            map.iter()
                .filter_map(|(k, v)| json_to_expr(v).map(|e| (k.clone(), e))),
        )
        .ok(),
    }
}
