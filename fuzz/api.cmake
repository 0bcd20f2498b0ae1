# Fuzz targets of src/api (included from fuzz/CMakeLists.txt).
osb_add_fuzzer(router_target_fuzz osb_api_router)
