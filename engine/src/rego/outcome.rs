//! Reading the entrypoint's value into reasons and obligations.

use serde_json::Value as Json;

use super::PackageRules;
use crate::decision::{Backend, Effect, Mask, Obligations, Reason, Redaction, Route, Throttle};

/// What the Rego policies said about one input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegoOutcome {
    /// Deny reasons.
    pub denies: Vec<Reason>,
    /// Packages whose `allow` is true.
    pub allows: Vec<Reason>,
    /// Warnings.
    pub warns: Vec<Reason>,
    /// Obligations that were malformed: each is an error reason.
    pub errors: Vec<Reason>,
    /// Obligations, merged across packages in package order.
    pub obligations: Obligations,
}

impl RegoOutcome {
    /// Interprets the value of `data.sluice.decision`. A package whose rules all hold
    /// their defaults (most packages, for most inputs) says nothing and is skipped before
    /// any conversion; the others are read through JSON.
    pub fn from_value(value: &regorus::Value, packages: &[PackageRules]) -> RegoOutcome {
        let mut outcome = RegoOutcome::default();
        let regorus::Value::Object(root) = value else {
            return outcome;
        };
        for package in packages {
            let Some(rules) = root.get(&regorus::Value::from(package.path.as_str())) else {
                continue;
            };
            if let regorus::Value::Object(fields) = rules
                && fields.iter().all(|(rule, value)| is_default(rule, value))
            {
                continue;
            }
            match serde_json::to_value(rules) {
                Ok(json) => outcome.read_package(package, &json),
                Err(e) => outcome.errors.push(error_reason(
                    None,
                    super::ENTRYPOINT,
                    format!("entrypoint value is not JSON: {e}"),
                )),
            }
        }
        outcome
    }

    fn read_package(&mut self, package: &PackageRules, rules: &Json) {
        let file = |rule: &str| -> Option<String> {
            package.rules.get(rule).map(|files| files.join(", "))
        };
        let rule_path = |rule: &str| format!("{}.{rule}", package.path);
        let error =
            |rule: &str, message: String| error_reason(file(rule), &rule_path(rule), message);

        for (rule, effect) in [("deny", Effect::Deny), ("warn", Effect::Warn)] {
            for item in as_items(rules.get(rule)) {
                let (message, id) = message_of(item);
                let reason = Reason {
                    backend: Backend::Rego,
                    effect,
                    file: file(rule),
                    rule: id.unwrap_or_else(|| rule_path(rule)),
                    message,
                };
                match effect {
                    Effect::Deny => self.denies.push(reason),
                    _ => self.warns.push(reason),
                }
            }
        }
        if rules.get("allow") == Some(&Json::Bool(true)) {
            self.allows.push(Reason {
                backend: Backend::Rego,
                effect: Effect::Allow,
                file: file("allow"),
                rule: rule_path("allow"),
                message: format!("allowed by `{}`", rule_path("allow")),
            });
        }
        for item in as_items(rules.get("redact")) {
            let redaction = match item {
                Json::String(class) => Ok(Redaction {
                    class: Some(class.clone()),
                    ..Redaction::default()
                }),
                other => serde_json::from_value::<Redaction>(other.clone())
                    .map_err(|e| format!("malformed redaction `{other}`: {e}")),
            };
            let checked = redaction.and_then(|r| {
                if r.class.is_none() && r.pattern.is_none() && r.pointer.is_none() {
                    return Err(
                        "a redaction needs a `class`, a `pattern` or a `pointer`".to_string()
                    );
                }
                if r.mode.is_some() && r.class.is_none() {
                    return Err(
                        "a redaction `mode` applies to detector classes: give a `class`"
                            .to_string(),
                    );
                }
                if let Some(pattern) = &r.pattern
                    && let Err(e) = regex::Regex::new(pattern)
                {
                    return Err(format!(
                        "redact pattern `{pattern}` is not a valid regular expression: {e}"
                    ));
                }
                Ok(r)
            });
            match checked {
                Ok(r) => self.obligations.redact.push(r),
                Err(message) => self.errors.push(error("redact", message)),
            }
        }
        match rules.get("route") {
            None | Some(Json::Null) => {}
            Some(value) => {
                let route = match value {
                    Json::String(model) => Ok(Route {
                        model: Some(model.clone()),
                        ..Route::default()
                    }),
                    other => serde_json::from_value::<Route>(other.clone()),
                };
                match route {
                    Ok(route) if self.obligations.route.is_none() => {
                        self.obligations.route = Some(route)
                    }
                    Ok(route) if self.obligations.route.as_ref() == Some(&route) => {}
                    Ok(route) => {
                        let message = format!(
                            "conflicting route obligations: `{}` and `{}`",
                            serde_json::to_string(&self.obligations.route).unwrap_or_default(),
                            serde_json::to_string(&route).unwrap_or_default()
                        );
                        self.errors.push(error("route", message));
                    }
                    Err(e) => self
                        .errors
                        .push(error("route", format!("malformed route `{value}`: {e}"))),
                }
            }
        }
        match rules.get("headers") {
            None | Some(Json::Null) => {}
            Some(Json::Object(map)) => {
                for (name, value) in map {
                    match value {
                        Json::String(v) => {
                            self.obligations
                                .headers
                                .insert(name.to_ascii_lowercase(), v.clone());
                        }
                        other => self.errors.push(error(
                            "headers",
                            format!("header `{name}` must be a string, got `{other}`"),
                        )),
                    }
                }
            }
            Some(other) => self.errors.push(error(
                "headers",
                format!("headers must be an object, got `{other}`"),
            )),
        }
        for item in as_items(rules.get("mask")) {
            let mask = match item {
                Json::String(pointer) => Ok(Mask {
                    pointer: pointer.clone(),
                    replacement: None,
                }),
                other => serde_json::from_value::<Mask>(other.clone())
                    .map_err(|e| format!("malformed mask `{other}`: {e}")),
            };
            match mask {
                Ok(mask) if mask.pointer.is_empty() || mask.pointer.starts_with('/') => {
                    self.obligations.mask.push(mask)
                }
                Ok(mask) => self.errors.push(error(
                    "mask",
                    format!(
                        "mask `{}` is not a JSON pointer (it must start with `/`)",
                        mask.pointer
                    ),
                )),
                Err(message) => self.errors.push(error("mask", message)),
            }
        }
        match rules.get("log_text") {
            None | Some(Json::Null) | Some(Json::Bool(false)) => {}
            Some(Json::Bool(true)) => self.obligations.log_text = true,
            Some(other) => self.errors.push(error(
                "log_text",
                format!("log_text must be a boolean, got `{other}`"),
            )),
        }
        for item in as_items(rules.get("flag")) {
            match item {
                Json::String(flag) if !flag.is_empty() => {
                    if !self.obligations.flags.contains(flag) {
                        self.obligations.flags.push(flag.clone());
                    }
                }
                other => self.errors.push(error(
                    "flag",
                    format!("a session flag must be a non-empty string, got `{other}`"),
                )),
            }
        }
        match rules.get("throttle") {
            None | Some(Json::Null) => {}
            Some(value) => match serde_json::from_value::<Throttle>(value.clone()) {
                Ok(throttle) => {
                    self.obligations.throttle =
                        Some(tighter(self.obligations.throttle.take(), throttle))
                }
                Err(e) => self.errors.push(error(
                    "throttle",
                    format!("malformed throttle `{value}`: {e}"),
                )),
            },
        }
    }
}

/// Whether a rule's value is the default the generated entrypoint gives it (see
/// `entrypoint_module`): a rule holding it says nothing.
fn is_default(rule: &regorus::Value, value: &regorus::Value) -> bool {
    use regorus::Value as V;
    let V::String(rule) = rule else {
        return false;
    };
    match (rule.as_ref(), value) {
        ("allow" | "log_text", V::Bool(false)) | ("route" | "throttle", V::Null) => true,
        ("headers", V::Object(headers)) => headers.is_empty(),
        ("allow" | "log_text" | "route" | "throttle" | "headers", _) => false,
        (_, V::Set(items)) => items.is_empty(),
        (_, V::Array(items)) => items.is_empty(),
        _ => false,
    }
}

/// Two throttles combine to the tighter of each limit.
pub(crate) fn tighter(a: Option<Throttle>, b: Throttle) -> Throttle {
    let Some(a) = a else { return b };
    let min = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    Throttle {
        requests_per_minute: min(a.requests_per_minute, b.requests_per_minute),
        tokens_per_minute: min(a.tokens_per_minute, b.tokens_per_minute),
    }
}

fn as_items(value: Option<&Json>) -> &[Json] {
    match value {
        Some(Json::Array(items)) => items,
        _ => &[],
    }
}

/// A deny or warn item: a string, or an object with `msg`/`message` and optional `rule`/`id`.
fn message_of(item: &Json) -> (String, Option<String>) {
    match item {
        Json::String(s) => (s.clone(), None),
        Json::Object(map) => {
            let message = ["msg", "message", "reason"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Json::as_str))
                .map(str::to_string)
                .unwrap_or_else(|| item.to_string());
            let id = ["rule", "id"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Json::as_str))
                .map(str::to_string);
            (message, id)
        }
        other => (other.to_string(), None),
    }
}

fn error_reason(file: Option<String>, rule: &str, message: String) -> Reason {
    Reason {
        backend: Backend::Rego,
        effect: Effect::Error,
        file,
        rule: rule.to_string(),
        message,
    }
}
