# Fuzz targets of src/api (included from fuzz/CMakeLists.txt).
osb_add_fuzzer(router_target_fuzz osb_api_router)
osb_add_fuzzer(command_frame_fuzz osb_api_router)
