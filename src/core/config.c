/* Placeholder until the module lands; replaced by its implementation. */
typedef int pd_placeholder_t;
