//! Store URLs of scheme `ofi` (parsed by `object_server::config_from_url`).

#[cfg(test)]
mod tests {
    use proxy_core::registry;

    #[test]
    fn urls() {
        crate::register();
        let c = registry::connector_config_from_url("ofi://10.0.0.1:7700/").unwrap();
        assert_eq!(
            (c.kind.as_str(), &c.options["server"]),
            ("ofi", &"10.0.0.1:7700".into())
        );
        let o: crate::OfiConfig = c.options().unwrap();
        assert_eq!(o, crate::OfiConfig::new("10.0.0.1:7700"));
        for bad in [
            "ofi://",
            "ofi://host",
            "ofi://:7700",
            "ofi://host:port",
            "ofi://host:7700/x",
            "ofi://u:pw@host:7700",
        ] {
            let e = registry::connector_config_from_url(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("ofi") && !e.contains("pw@"), "{bad}: {e}");
        }
    }
}
