import SSLCore
print(BLAS.configuration)
