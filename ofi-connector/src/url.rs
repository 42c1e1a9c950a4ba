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
        let c = registry::connector_config_from_url(
            "ofi://10.0.0.1:7700?provider=tcp%3Bofi_rxm&domain=lo&zero_copy=false",
        )
        .unwrap();
        let o: crate::OfiConfig = c.options().unwrap();
        assert_eq!(
            (o.provider.as_deref(), o.domain.as_deref()),
            (Some("tcp;ofi_rxm"), Some("lo"))
        );
        assert!(!o.client.zero_copy);
        let c = registry::connector_config_from_url("ofi://h:1?provider=shm").unwrap();
        assert_eq!(c.options["provider"], "shm");
        let e = registry::connector_config_from_url("ofi://h:1?fabric=x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown query key \"fabric\"") && e.contains("zero_copy, provider, domain"),
            "{e}"
        );
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
