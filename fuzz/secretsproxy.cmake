# Secrets proxy fuzz targets (included from fuzz/CMakeLists.txt).
osb_add_fuzzer(secretsproxy_request_fuzz osb_secretsproxy)
osb_add_fuzzer(secretsproxy_sni_fuzz osb_secretsproxy)
osb_add_fuzzer(secretsproxy_scrub_fuzz osb_secretsproxy)
