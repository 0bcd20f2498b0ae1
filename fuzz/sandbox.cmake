# Fuzz targets of src/sandbox (included from fuzz/CMakeLists.txt).
osb_add_fuzzer(dns_query_fuzz osb_sandbox)
osb_add_fuzzer(state_archive_fuzz osb_sandbox)
