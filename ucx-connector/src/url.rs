//! Store URLs of scheme `ucx` (parsed by `object_server::config_from_url`).

#[cfg(test)]
mod tests {
    use object_server::TransportConfig;
    use proxy_core::registry;

    #[test]
    fn urls() {
        crate::register();
        let c = registry::connector_config_from_url("ucx://10.0.0.1:7700/").unwrap();
        assert_eq!(
            (c.kind.as_str(), &c.options["server"]),
            ("ucx", &"10.0.0.1:7700".into())
        );
        let o: crate::UcxConfig = c.options().unwrap();
        assert_eq!(o, crate::UcxConfig::new("10.0.0.1:7700"));
        assert!(o.client().zero_copy);
        let c = registry::connector_config_from_url("ucx://10.0.0.1:7700?zero_copy=false").unwrap();
        let o: crate::UcxConfig = c.options().unwrap();
        assert!(!o.client().zero_copy && o.client().server == "10.0.0.1:7700");
        assert_eq!(c.options["zero_copy"], serde_json::Value::Bool(false));
        let c = registry::connector_config_from_url(
            "ucx://10.0.0.1:7700?ucx_tls=shm%2Ccma%2Cself&timeout_ms=500&data_path=stream",
        )
        .unwrap();
        let o: crate::UcxConfig = c.options().unwrap();
        assert_eq!(o.ucx_tls.as_deref(), Some("shm,cma,self"));
        assert_eq!(o.client().timeout_ms, 500);
        assert_eq!(o.client().data_path, crate::DataPath::Stream);
        let e = registry::connector_config_from_url("ucx://h:1?tls=tcp")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown query key \"tls\"") && e.contains("zero_copy, ucx_tls"),
            "{e}"
        );
        let e = registry::connector_config_from_url("ucx://h:1?ucx_tls=")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("query key ucx_tls: expected a non-empty value"),
            "{e}"
        );
        for bad in [
            "ucx://",
            "ucx://host",
            "ucx://:7700",
            "ucx://host:port",
            "ucx://host:7700/x",
            "ucx://u:pw@host:7700",
            "ucx://host:7700?zero_copy=maybe",
            "ucx://host:7700?color=red",
        ] {
            let e = registry::connector_config_from_url(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("ucx") && !e.contains("pw@"), "{bad}: {e}");
        }
    }
}
