"""torchvision's Inception v3 (eval mode, no aux head, transform_input=False) in Flax.

Parameter names equal torchvision's (``Mixed_5b.branch1x1.conv.weight`` ->
Mixed_5b/branch1x1/conv/kernel); quirks kept: convs without bias, BatchNorm eps 0.001 with
running statistics, 3x3 average pools with count_include_pad=True, floor-mode max pools,
global mean pooling, branch concat order as torchvision.
"""
import flax.linen as nn
import jax.numpy as jnp

BN_EPS = 0.001


class BasicConv2d(nn.Module):
    """Conv (no bias) + BatchNorm (running statistics, eps 0.001) + ReLU."""
    features: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x):
        (ph, pw) = self.padding
        x = nn.Conv(self.features, self.kernel, strides=self.stride, padding=((ph, ph), (pw, pw)), use_bias=False,
                    name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name="bn")(x)
        return nn.relu(x)


def _c(features, k, stride=1, pad=0, name=None):
    kernel = (k, k) if isinstance(k, int) else k
    padding = (pad, pad) if isinstance(pad, int) else pad
    return BasicConv2d(features, kernel, stride, padding, name=name)


def _avg_pool_3x3_include_pad(x):
    """F.avg_pool2d(3, stride 1, padding 1): zeros count in the average (count_include_pad=True)."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=True)


def _max_pool_3x3_s2(x):
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = _c(64, 1, name="branch1x1")(x)
        b5 = _c(64, 5, pad=2, name="branch5x5_2")(_c(48, 1, name="branch5x5_1")(x))
        b3 = _c(96, 3, pad=1, name="branch3x3dbl_2")(_c(64, 1, name="branch3x3dbl_1")(x))
        b3 = _c(96, 3, pad=1, name="branch3x3dbl_3")(b3)
        bp = _c(self.pool_features, 1, name="branch_pool")(_avg_pool_3x3_include_pad(x))
        return jnp.concatenate([b1, b5, b3, bp], -1)


class InceptionB(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = _c(384, 3, stride=2, name="branch3x3")(x)
        bd = _c(96, 3, pad=1, name="branch3x3dbl_2")(_c(64, 1, name="branch3x3dbl_1")(x))
        bd = _c(96, 3, stride=2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], -1)


class InceptionC(nn.Module):
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = _c(192, 1, name="branch1x1")(x)
        b7 = _c(c7, 1, name="branch7x7_1")(x)
        b7 = _c(c7, (1, 7), pad=(0, 3), name="branch7x7_2")(b7)
        b7 = _c(192, (7, 1), pad=(3, 0), name="branch7x7_3")(b7)
        bd = _c(c7, 1, name="branch7x7dbl_1")(x)
        bd = _c(c7, (7, 1), pad=(3, 0), name="branch7x7dbl_2")(bd)
        bd = _c(c7, (1, 7), pad=(0, 3), name="branch7x7dbl_3")(bd)
        bd = _c(c7, (7, 1), pad=(3, 0), name="branch7x7dbl_4")(bd)
        bd = _c(192, (1, 7), pad=(0, 3), name="branch7x7dbl_5")(bd)
        bp = _c(192, 1, name="branch_pool")(_avg_pool_3x3_include_pad(x))
        return jnp.concatenate([b1, b7, bd, bp], -1)


class InceptionD(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = _c(320, 3, stride=2, name="branch3x3_2")(_c(192, 1, name="branch3x3_1")(x))
        b7 = _c(192, 1, name="branch7x7x3_1")(x)
        b7 = _c(192, (1, 7), pad=(0, 3), name="branch7x7x3_2")(b7)
        b7 = _c(192, (7, 1), pad=(3, 0), name="branch7x7x3_3")(b7)
        b7 = _c(192, 3, stride=2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], -1)


class InceptionE(nn.Module):
    @nn.compact
    def __call__(self, x):
        b1 = _c(320, 1, name="branch1x1")(x)
        b3 = _c(384, 1, name="branch3x3_1")(x)
        b3 = jnp.concatenate([_c(384, (1, 3), pad=(0, 1), name="branch3x3_2a")(b3),
                              _c(384, (3, 1), pad=(1, 0), name="branch3x3_2b")(b3)], -1)
        bd = _c(384, 3, pad=1, name="branch3x3dbl_2")(_c(448, 1, name="branch3x3dbl_1")(x))
        bd = jnp.concatenate([_c(384, (1, 3), pad=(0, 1), name="branch3x3dbl_3a")(bd),
                              _c(384, (3, 1), pad=(1, 0), name="branch3x3dbl_3b")(bd)], -1)
        bp = _c(192, 1, name="branch_pool")(_avg_pool_3x3_include_pad(x))
        return jnp.concatenate([b1, b3, bd, bp], -1)


class InceptionV3(nn.Module):
    """Returns (logits (B, 1000), pool3 (B, 2048)); inputs NHWC in [-1, 1] (transform_input=False)."""
    num_classes: int = 1000

    @nn.compact
    def __call__(self, x):
        x = _c(32, 3, stride=2, name="Conv2d_1a_3x3")(x)
        x = _c(32, 3, name="Conv2d_2a_3x3")(x)
        x = _c(64, 3, pad=1, name="Conv2d_2b_3x3")(x)
        x = _max_pool_3x3_s2(x)
        x = _c(80, 1, name="Conv2d_3b_1x1")(x)
        x = _c(192, 3, name="Conv2d_4a_3x3")(x)
        x = _max_pool_3x3_s2(x)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        x = InceptionC(128, name="Mixed_6b")(x)
        x = InceptionC(160, name="Mixed_6c")(x)
        x = InceptionC(160, name="Mixed_6d")(x)
        x = InceptionC(192, name="Mixed_6e")(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE(name="Mixed_7b")(x)
        x = InceptionE(name="Mixed_7c")(x)
        pool3 = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="fc")(pool3), pool3
