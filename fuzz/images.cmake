# Fuzz targets of src/images (included from fuzz/CMakeLists.txt).
osb_add_fuzzer(images_manifest_fuzz osb_images)
osb_add_fuzzer(images_layer_fuzz osb_images)
