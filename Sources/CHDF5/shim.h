#include <hdf5.h>

// HDF5's type and access constants are macros that expand to function calls or globals Swift
// cannot import; these wrappers expose them.
static inline hid_t graft_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t graft_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t graft_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t graft_h5t_c_s1(void) { return H5T_C_S1; }
static inline unsigned graft_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned graft_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline hid_t graft_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t graft_h5s_all(void) { return H5S_ALL; }
