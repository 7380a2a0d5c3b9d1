//! Schema description: the attributes of a resource, data source or the
//! provider itself, with the plan behaviour and validation that belong to each
//! attribute (in the spirit of terraform-plugin-framework, plan modifiers and
//! validators live beside the attribute they govern).

use std::collections::BTreeMap;
use std::sync::Arc;

use hybrid_cty::{Type, Value};

use super::diagnostics::Diagnostics;
use super::path::AttrPath;

/// Checks one known, non-null attribute value.
pub type Validator = Arc<dyn Fn(&Value, &AttrPath, &mut Diagnostics) + Send + Sync>;

/// Whether the practitioner must, may, or cannot set an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Required,
    Optional,
    /// Set by the provider only.
    Computed,
    /// Set by the practitioner, or by the provider when left out.
    OptionalComputed,
}

impl Mode {
    pub fn is_computed(self) -> bool {
        matches!(self, Mode::Computed | Mode::OptionalComputed)
    }
}

#[derive(Clone)]
pub enum Kind {
    Primitive(Type),
    /// A single nested object (`pool = { start = …, end = … }`).
    Nested(Vec<Attribute>),
    /// A list, set or map of nested objects (`nodes = [{ name = …, ip = … }]`).
    NestedCollection(Nesting, Vec<Attribute>),
}

/// How a collection of nested objects is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    List,
    Set,
    Map,
}

#[derive(Clone)]
pub struct Attribute {
    pub name: &'static str,
    pub kind: Kind,
    pub mode: Mode,
    pub description: String,
    pub sensitive: bool,
    pub write_only: bool,
    /// A change to this attribute destroys and re-creates the object.
    pub requires_replace: bool,
    /// When the attribute is computed and left unknown by the plan, keep the
    /// prior state's value instead (for values that never change once set).
    pub use_state_for_unknown: bool,
    /// Planned when the practitioner leaves the attribute out; the attribute
    /// is then optional+computed so the default never shows as a diff.
    pub default: Option<Value>,
    pub validators: Vec<Validator>,
}

impl Attribute {
    fn new(name: &'static str, kind: Kind) -> Self {
        Self {
            name,
            kind,
            mode: Mode::Optional,
            description: String::new(),
            sensitive: false,
            write_only: false,
            requires_replace: false,
            use_state_for_unknown: false,
            default: None,
            validators: Vec::new(),
        }
    }

    pub fn string(name: &'static str) -> Self {
        Self::new(name, Kind::Primitive(Type::String))
    }

    pub fn number(name: &'static str) -> Self {
        Self::new(name, Kind::Primitive(Type::Number))
    }

    pub fn bool(name: &'static str) -> Self {
        Self::new(name, Kind::Primitive(Type::Bool))
    }

    pub fn list(name: &'static str, element: Type) -> Self {
        Self::new(name, Kind::Primitive(Type::List(Box::new(element))))
    }

    pub fn map(name: &'static str, element: Type) -> Self {
        Self::new(name, Kind::Primitive(Type::Map(Box::new(element))))
    }

    pub fn nested(name: &'static str, attributes: Vec<Attribute>) -> Self {
        Self::new(name, Kind::Nested(attributes))
    }

    pub fn nested_collection(
        name: &'static str,
        nesting: Nesting,
        attributes: Vec<Attribute>,
    ) -> Self {
        Self::new(name, Kind::NestedCollection(nesting, attributes))
    }

    pub fn required(mut self) -> Self {
        self.mode = Mode::Required;
        self
    }

    pub fn optional(mut self) -> Self {
        self.mode = Mode::Optional;
        self
    }

    pub fn computed(mut self) -> Self {
        self.mode = Mode::Computed;
        self
    }

    pub fn optional_computed(mut self) -> Self {
        self.mode = Mode::OptionalComputed;
        self
    }

    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Write-only (Terraform ≥ 1.11): sent to the provider on apply, never
    /// kept in plan or state.
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }

    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }

    pub fn use_state_for_unknown(mut self) -> Self {
        self.use_state_for_unknown = true;
        self
    }

    pub fn default_value(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self.mode = Mode::OptionalComputed;
        self
    }

    pub fn validator(mut self, validator: Validator) -> Self {
        self.validators.push(validator);
        self
    }

    /// The cty type of this attribute's value.
    pub fn value_type(&self) -> Type {
        match &self.kind {
            Kind::Primitive(ty) => ty.clone(),
            Kind::Nested(attributes) => object_type(attributes),
            Kind::NestedCollection(nesting, attributes) => {
                let object = Box::new(object_type(attributes));
                match nesting {
                    Nesting::List => Type::List(object),
                    Nesting::Set => Type::Set(object),
                    Nesting::Map => Type::Map(object),
                }
            }
        }
    }
}

/// The object type of a list of attributes.
pub fn object_type(attributes: &[Attribute]) -> Type {
    Type::Object {
        attrs: attributes
            .iter()
            .map(|a| (a.name.to_string(), a.value_type()))
            .collect::<BTreeMap<_, _>>(),
        optional: Default::default(),
    }
}

/// The schema of one resource, data source, ephemeral resource or the
/// provider configuration.
#[derive(Clone)]
pub struct Schema {
    pub version: i64,
    pub description: String,
    pub attributes: Vec<Attribute>,
    /// Nested blocks. New shapes use nested attributes (they take a whole
    /// object, null or unknown, like any other value); blocks exist for the
    /// shapes Terraform users know as blocks.
    pub blocks: Vec<Block>,
}

/// How a nested block repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockNesting {
    Single,
    List,
    Set,
}

/// A nested block (`name { … }`), with attributes only.
#[derive(Clone)]
pub struct Block {
    pub type_name: &'static str,
    pub nesting: BlockNesting,
    pub description: String,
    pub attributes: Vec<Attribute>,
    pub min_items: i64,
    pub max_items: i64,
    /// A change to the block destroys and re-creates the object.
    pub requires_replace: bool,
}

impl Block {
    pub fn value_type(&self) -> Type {
        let object = object_type(&self.attributes);
        match self.nesting {
            BlockNesting::Single => object,
            BlockNesting::List => Type::List(Box::new(object)),
            BlockNesting::Set => Type::Set(Box::new(object)),
        }
    }
}

impl Schema {
    pub fn new(description: impl Into<String>, attributes: Vec<Attribute>) -> Self {
        Self {
            version: 0,
            description: description.into(),
            attributes,
            blocks: Vec::new(),
        }
    }

    /// The schema's version, stored by Terraform beside each state. Bump it
    /// when a change of the attributes means an older state needs
    /// rewriting, and rewrite it in [`Resource::upgrade_state`].
    ///
    /// [`Resource::upgrade_state`]: super::Resource::upgrade_state
    pub fn with_version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    pub fn with_blocks(mut self, blocks: Vec<Block>) -> Self {
        self.blocks = blocks;
        self
    }

    pub fn value_type(&self) -> Type {
        let mut ty = object_type(&self.attributes);
        if let Type::Object { attrs, .. } = &mut ty {
            for block in &self.blocks {
                attrs.insert(block.type_name.to_string(), block.value_type());
            }
        }
        ty
    }

    /// Runs every attribute validator on the known, non-null values of
    /// `config`, recursing into nested objects and blocks.
    pub fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        validate_attributes(&self.attributes, config, &AttrPath::root(), diags);
        for block in &self.blocks {
            let at = AttrPath::attr(block.type_name);
            match config.get(block.type_name) {
                Some(Value::Object(_)) => {
                    let value = config.get(block.type_name).unwrap_or(&Value::Null);
                    validate_attributes(&block.attributes, value, &at, diags);
                }
                Some(value) => {
                    for (index, element) in value.elements().unwrap_or_default().iter().enumerate()
                    {
                        let index = i64::try_from(index).unwrap_or(i64::MAX);
                        validate_attributes(
                            &block.attributes,
                            element,
                            &at.clone().then_index(index),
                            diags,
                        );
                    }
                }
                None => {}
            }
        }
    }
}

fn validate_attributes(
    attributes: &[Attribute],
    object: &Value,
    path: &AttrPath,
    diags: &mut Diagnostics,
) {
    for attribute in attributes {
        let Some(value) = object.get(attribute.name) else {
            continue;
        };
        if value.is_null() || value.is_unknown() {
            continue;
        }
        let at = extend(path, attribute.name);
        for validator in &attribute.validators {
            validator(value, &at, diags);
        }
        match (&attribute.kind, value) {
            (Kind::Nested(inner), _) => validate_attributes(inner, value, &at, diags),
            (Kind::NestedCollection(_, inner), Value::Map(entries)) => {
                for (key, element) in entries {
                    validate_attributes(inner, element, &at.clone().then_key(key), diags);
                }
            }
            (Kind::NestedCollection(_, inner), _) => {
                for (index, element) in value.elements().unwrap_or_default().iter().enumerate() {
                    let index = i64::try_from(index).unwrap_or(i64::MAX);
                    validate_attributes(inner, element, &at.clone().then_index(index), diags);
                }
            }
            (Kind::Primitive(_), _) => {}
        }
    }
}

fn extend(path: &AttrPath, name: &str) -> AttrPath {
    path.clone().then_attr(name)
}

/// Ready-made validators.
pub mod validators {
    use super::*;

    /// The value must be one of `allowed`.
    pub fn one_of(allowed: &'static [&'static str]) -> Validator {
        Arc::new(move |value, path, diags| {
            if let Some(text) = value.as_str()
                && !allowed.contains(&text)
            {
                diags.error_at(
                    path.clone(),
                    format!("Invalid {path}"),
                    format!(
                        "{path} is {text:?}; it must be one of: {}.",
                        allowed
                            .iter()
                            .map(|a| format!("{a:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        })
    }

    /// The value must be a whole number in `min..=max`.
    pub fn int_between(min: i64, max: i64) -> Validator {
        Arc::new(move |value, path, diags| {
            let Some(number) = value.as_number() else {
                return;
            };
            match number.as_i64() {
                Some(n) if (min..=max).contains(&n) => {}
                _ => diags.error_at(
                    path.clone(),
                    format!("Invalid {path}"),
                    format!("{path} is {number}; it must be a whole number from {min} to {max}."),
                ),
            }
        })
    }

    /// The string must pass `check`, which explains the rule when it fails.
    pub fn string_rule(check: fn(&str) -> Result<(), String>) -> Validator {
        Arc::new(move |value, path, diags| {
            if let Some(text) = value.as_str()
                && let Err(rule) = check(text)
            {
                diags.error_at(path.clone(), format!("Invalid {path}"), rule);
            }
        })
    }
}
