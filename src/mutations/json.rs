//! Entries as loket staff send them: JSON walked field by field, so that every refusal
//! names its field (`entry.gegevensdiensten[0].token_endpoint`) and all of them are reported
//! at once. Field names are those of the stored form, so what `GET` returns can be sent back.

use serde_json::{Map, Value};

use crate::domain::{
    Aanbiedertype, AnyEntry, Backchanneluri, Frontchanneluri, Gegevensdienst, GegevensdienstFields,
    GegevensdienstId, GegevensdienstNaam, Hostname, Interfaceversie, InvalidValue, ListKind,
    MedMijNode, OAuthclient, OAuthclientOrganisatienaam, Rule, Systeemrol, Systeemrolcode,
    Violation, Violations, Weergavenaam, Zorgaanbieder, ZorgaanbiederFields, Zorgaanbiedernaam,
};

/// Collects the refusals of one JSON document while it is walked.
#[derive(Default)]
pub(super) struct Walker {
    pub violations: Vec<Violation>,
}

impl Walker {
    pub fn refuse(&mut self, path: &str, rule: Rule, message: impl Into<String>) {
        self.violations.push(Violation::new(path, rule, message));
    }

    /// The fields of an object; refuses anything else and fields it does not know.
    pub fn object<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(fields) = value.as_object() else {
            self.refuse(path, Rule::Structure, "must be a JSON object");
            return None;
        };
        for name in fields.keys().filter(|n| !known.contains(&n.as_str())) {
            self.refuse(
                &format!("{path}.{name}"),
                Rule::Structure,
                format!("unknown field; expected one of: {}", known.join(", ")),
            );
        }
        Some(fields)
    }

    /// A required string field parsed into its type.
    pub fn text<T>(
        &mut self,
        fields: &Map<String, Value>,
        path: &str,
        name: &str,
        parse: impl FnOnce(String) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        let path = format!("{path}.{name}");
        match fields.get(name) {
            None | Some(Value::Null) => {
                self.refuse(&path, Rule::Structure, "is required");
                None
            }
            Some(value) => self.parse_text(value, &path, parse),
        }
    }

    /// An optional string field parsed into its type.
    pub fn optional_text<T>(
        &mut self,
        fields: &Map<String, Value>,
        path: &str,
        name: &str,
        parse: impl FnOnce(String) -> Result<T, InvalidValue>,
    ) -> Option<Option<T>> {
        match fields.get(name) {
            None | Some(Value::Null) => Some(None),
            Some(value) => self
                .parse_text(value, &format!("{path}.{name}"), parse)
                .map(Some),
        }
    }

    fn parse_text<T>(
        &mut self,
        value: &Value,
        path: &str,
        parse: impl FnOnce(String) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        let Some(text) = value.as_str() else {
            self.refuse(path, Rule::Structure, "must be a string");
            return None;
        };
        parse(text.to_owned())
            .map_err(|e| self.violations.push(e.at(path)))
            .ok()
    }

    /// A required array field, each element walked by `element`.
    pub fn array<T>(
        &mut self,
        fields: &Map<String, Value>,
        path: &str,
        name: &str,
        mut element: impl FnMut(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let path = format!("{path}.{name}");
        let Some(items) = fields.get(name).and_then(Value::as_array) else {
            self.refuse(&path, Rule::Structure, "is required and must be an array");
            return None;
        };
        let before = self.violations.len();
        let parsed: Vec<T> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| element(self, item, &format!("{path}[{i}]")))
            .collect();
        (self.violations.len() == before).then_some(parsed)
    }

    /// Places the refusals of a composite constructor (whose paths are XML element paths
    /// relative to the composite) under `path`.
    pub fn composite<T>(&mut self, path: &str, built: Result<T, Violations>) -> Option<T> {
        built
            .map_err(|v| {
                self.violations
                    .extend(v.into_vec().into_iter().map(|v| v.within(path)));
            })
            .ok()
    }

    pub fn finish<T>(self, value: Option<T>) -> Result<T, Violations> {
        match (Violations::from_vec(self.violations), value) {
            (None, Some(value)) => Ok(value),
            (Some(violations), _) => Err(violations),
            (None, None) => unreachable!("a missing value always comes with a refusal"),
        }
    }
}

/// An entry of `list` from its JSON form, with every refusal at its field under `path`.
pub(super) fn entry(w: &mut Walker, list: ListKind, value: &Value, path: &str) -> Option<AnyEntry> {
    match list {
        ListKind::Zal => zorgaanbieder(w, value, path).map(AnyEntry::Zorgaanbieder),
        ListKind::Ocl => {
            let f = w.object(
                value,
                path,
                &["hostname", "organisatienaam", "interfaceversie"],
            )?;
            let hostname = w.text(f, path, "hostname", Hostname::parse);
            let organisatienaam = w.text(
                f,
                path,
                "organisatienaam",
                OAuthclientOrganisatienaam::parse,
            );
            let interfaceversie =
                w.optional_text(f, path, "interfaceversie", Interfaceversie::parse);
            Some(AnyEntry::OAuthclient(OAuthclient {
                hostname: hostname?,
                organisatienaam: organisatienaam?,
                interfaceversie: interfaceversie?,
            }))
        }
        ListKind::Gnl => {
            let f = w.object(value, path, &["id", "weergavenaam"])?;
            let id = w.text(f, path, "id", GegevensdienstId::parse);
            let weergavenaam = w.text(f, path, "weergavenaam", Weergavenaam::parse);
            Some(AnyEntry::GegevensdienstNaam(GegevensdienstNaam {
                id: id?,
                weergavenaam: weergavenaam?,
            }))
        }
        ListKind::Whitelist => {
            let f = w.object(value, path, &["hostname"])?;
            let hostname = w.text(f, path, "hostname", Hostname::parse)?;
            Some(AnyEntry::MedMijNode(MedMijNode { hostname }))
        }
    }
}

fn aanbiedertype(value: String) -> Result<Aanbiedertype, InvalidValue> {
    serde_json::from_value(Value::String(value))
        .map_err(|_| InvalidValue::new(Rule::Pattern, "must be one of ZA, BAZB, APD"))
}

fn zorgaanbieder(w: &mut Walker, value: &Value, path: &str) -> Option<Zorgaanbieder> {
    let f = w.object(value, path, &["naam", "aanbiedertype", "gegevensdiensten"])?;
    let naam = w.text(f, path, "naam", Zorgaanbiedernaam::parse);
    let aanbiedertype = w.optional_text(f, path, "aanbiedertype", aanbiedertype);
    let gegevensdiensten = w.array(f, path, "gegevensdiensten", gegevensdienst);
    let fields = ZorgaanbiederFields {
        naam: naam?,
        aanbiedertype: aanbiedertype?.unwrap_or_default(),
        gegevensdiensten: gegevensdiensten?,
    };
    w.composite(path, Zorgaanbieder::new(fields))
}

fn gegevensdienst(w: &mut Walker, value: &Value, path: &str) -> Option<Gegevensdienst> {
    let f = w.object(
        value,
        path,
        &[
            "id",
            "authorization_endpoint",
            "token_endpoint",
            "systeemrollen",
            "interfaceversie",
        ],
    )?;
    let id = w.text(f, path, "id", GegevensdienstId::parse);
    let authorization_endpoint = w.text(f, path, "authorization_endpoint", Frontchanneluri::parse);
    let token_endpoint = w.text(f, path, "token_endpoint", Backchanneluri::parse);
    let systeemrollen = w.array(f, path, "systeemrollen", |w, value, path| {
        let f = w.object(value, path, &["code", "resource_endpoint"])?;
        let code = w.text(f, path, "code", Systeemrolcode::parse);
        let resource_endpoint = w.text(f, path, "resource_endpoint", Backchanneluri::parse);
        Some(Systeemrol {
            code: code?,
            resource_endpoint: resource_endpoint?,
        })
    });
    let interfaceversie = w.optional_text(f, path, "interfaceversie", Interfaceversie::parse);
    let fields = GegevensdienstFields {
        id: id?,
        authorization_endpoint: authorization_endpoint?,
        token_endpoint: token_endpoint?,
        systeemrollen: systeemrollen?,
        interfaceversie: interfaceversie?,
    };
    w.composite(path, Gegevensdienst::new(fields))
}
