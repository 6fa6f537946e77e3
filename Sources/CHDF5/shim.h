#include <hdf5.h>

// HDF5's type and access constants are macros that expand to function calls or globals Swift
// cannot import; these wrappers expose them.
static inline hid_t graft_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t graft_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t graft_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t graft_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t graft_h5t_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t graft_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t graft_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t graft_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t graft_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t graft_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t graft_h5t_std_i8le(void) { return H5T_STD_I8LE; }
static inline hid_t graft_h5t_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t graft_h5t_c_s1(void) { return H5T_C_S1; }
static inline size_t graft_h5t_variable(void) { return H5T_VARIABLE; }
static inline unsigned graft_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned graft_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline hid_t graft_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t graft_h5s_all(void) { return H5S_ALL; }
static inline hid_t graft_h5e_default(void) { return H5E_DEFAULT; }

// Calls whose names changed between HDF5 1.10 and 1.12+; Graft builds against either.
static inline herr_t graft_h5_reclaim(hid_t type, hid_t space, void *buffer) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Treclaim(type, space, H5P_DEFAULT, buffer);
#else
    return H5Dvlen_reclaim(type, space, H5P_DEFAULT, buffer);
#endif
}

