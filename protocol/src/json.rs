//! [`JsonObject`]: a JSON object kept as the text the client sent.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A JSON object as the client sent it (the `data` of an `input`). The edge checks once that it is
/// a well-formed object; the game that reads it decodes it once, on the node hosting its room.
/// Between nodes it travels as these bytes, never re-encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonObject(Box<str>);

impl JsonObject {
    /// Checks that `text` is one JSON object.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let raw: &RawValue = serde_json::from_str(text)?;
        Self::from_raw(raw).ok_or_else(|| {
            <serde_json::Error as serde::de::Error>::custom("expected a JSON object")
        })
    }

    /// The object a raw value holds, if it is one (a raw value is already well-formed JSON).
    pub(crate) fn from_raw(raw: &RawValue) -> Option<Self> {
        raw.get().starts_with('{').then(|| Self(raw.get().into()))
    }

    /// The text of an object another node of the cluster checked (it is not checked again).
    pub fn trusted(text: String) -> Self {
        Self(text.into_boxed_str())
    }

    /// An object built in code.
    pub fn from_map(map: &Map<String, Value>) -> Self {
        Self(Value::Object(map.clone()).to_string().into_boxed_str())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0.into_string()
    }

    /// Decodes the object into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.0)
    }

    /// The object as a map of values.
    pub fn to_map(&self) -> serde_json::Result<Map<String, Value>> {
        self.decode()
    }
}

/// Between nodes the object travels as a string: the same bytes as the JSON text that the cluster
/// protocol has always carried for an input's `data`.
impl serde::Serialize for JsonObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for JsonObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::trusted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_are_taken() {
        assert_eq!(
            JsonObject::parse(r#"{"a": [1, 2]}"#).unwrap().as_str(),
            r#"{"a": [1, 2]}"#
        );
        assert!(JsonObject::parse("[1]").is_err());
        assert!(JsonObject::parse("3").is_err());
        assert!(JsonObject::parse(r#"{"a":"#).is_err());
        let m = JsonObject::parse(r#"{"dx":1}"#).unwrap().to_map().unwrap();
        assert_eq!(m["dx"], 1);
    }
}
