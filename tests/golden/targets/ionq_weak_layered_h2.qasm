OPENQASM 3.0;
input float h2_c0_n0_g0;
input float h2_c0_n0_prep_y;
input float h2_c0_n0_prep_z;
input float h2_c0_n1_g0;
input float h2_c0_n1_prep_y;
input float h2_c0_n1_prep_z;
bit[2] b;
#pragma braket verbatim
box{
gpi2(0.0) $0;
gpi2(3.14159265358979 - h2_c0_n0_prep_y) $0;
gpi2(-h2_c0_n0_prep_y - h2_c0_n0_prep_z) $0;
gpi2(-h2_c0_n0_g0 - h2_c0_n0_prep_y - h2_c0_n0_prep_z + 3.14159265358979) $0;
gpi2(0.0) $1;
gpi2(2.5707963267948966) $1;
gpi2(-h2_c0_n0_g0 - h2_c0_n0_prep_y - h2_c0_n0_prep_z + 1.5707963267949) $0;
ms(-h2_c0_n0_g0 - h2_c0_n0_prep_y - h2_c0_n0_prep_z, -0.5707963267948966, 1.5707963267948966) $0, $1;
gpi2(-h2_c0_n0_g0 - h2_c0_n0_prep_y - h2_c0_n0_prep_z + 3.14159265358979) $0;
gpi2(2.5707963267948966) $1;
gpi2(-h2_c0_n0_g0 - h2_c0_n0_prep_y - h2_c0_n0_prep_z - 1.5707963267949) $0;
gpi2(0.0) $2;
gpi2(3.14159265358979 - h2_c0_n1_prep_y) $2;
gpi2(-h2_c0_n1_prep_y - h2_c0_n1_prep_z) $2;
gpi2(-h2_c0_n1_g0 - h2_c0_n1_prep_y - h2_c0_n1_prep_z + 3.14159265358979) $2;
gpi2(0.0) $3;
gpi2(2.5707963267948966) $3;
gpi2(-h2_c0_n1_g0 - h2_c0_n1_prep_y - h2_c0_n1_prep_z + 1.5707963267949) $2;
ms(-h2_c0_n1_g0 - h2_c0_n1_prep_y - h2_c0_n1_prep_z, -0.5707963267948966, 1.5707963267948966) $2, $3;
gpi2(-h2_c0_n1_g0 - h2_c0_n1_prep_y - h2_c0_n1_prep_z + 3.14159265358979) $2;
gpi2(2.5707963267948966) $3;
gpi2(-h2_c0_n1_g0 - h2_c0_n1_prep_y - h2_c0_n1_prep_z - 1.5707963267949) $2;
}
b[0] = measure $1;
b[1] = measure $3;
