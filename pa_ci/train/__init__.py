"""Training: the mean-VSTOI objective, SPSA (paper Eq. 7), the training run and the warm start
(the frame-MSE loss by BPTT, the k-means codebook and the Adam driver)."""
