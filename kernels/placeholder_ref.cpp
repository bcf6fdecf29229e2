// replaced by the kernels implementation
