; ModuleID = 'small_rotation'
source_filename = "small_rotation"

@0 = internal constant [3 x i8] c"h1\00"
@1 = internal constant [3 x i8] c"h2\00"

define void @main() #0 {
entry:
  call void @__quantum__qis__phasedx__body(double 0x3FE02ECFA1D164DA, double 0x3FF921FB54442D18, ptr null)
  call void @__quantum__qis__phasedx__body(double 0x3FE0F52D5D2898F0, double 0x3FF921FB54442D18, ptr inttoptr (i64 1 to ptr))
  call void @__quantum__qis__phasedx__body(double 0x3FE4D4010FBFEA03, double 0x3FF921FB54442D18, ptr inttoptr (i64 2 to ptr))
  call void @__quantum__qis__mz__body(ptr null, ptr null)
  %0 = call i1 @__quantum__qis__read_result__body(ptr null)
  %1 = zext i1 %0 to i64
  %2 = mul i64 %1, 1
  %3 = or i64 %2, 0
  %4 = sub i64 1, %1
  %5 = mul i64 %4, 1
  %6 = xor i64 9223372036854775807, %5
  %7 = and i64 %6, %3
  call void @__quantum__qis__mz__body(ptr inttoptr (i64 1 to ptr), ptr inttoptr (i64 1 to ptr))
  %8 = call i1 @__quantum__qis__read_result__body(ptr inttoptr (i64 1 to ptr))
  %9 = zext i1 %8 to i64
  %10 = mul i64 %9, 2
  %11 = or i64 %10, %7
  %12 = sub i64 1, %9
  %13 = mul i64 %12, 2
  %14 = xor i64 9223372036854775807, %13
  %15 = and i64 %14, %11
  call void @__quantum__qis__mz__body(ptr inttoptr (i64 2 to ptr), ptr inttoptr (i64 2 to ptr))
  %16 = call i1 @__quantum__qis__read_result__body(ptr inttoptr (i64 2 to ptr))
  %17 = zext i1 %16 to i64
  %18 = mul i64 %17, 4
  %19 = or i64 %18, %15
  %20 = sub i64 1, %17
  %21 = mul i64 %20, 4
  %22 = xor i64 9223372036854775807, %21
  %23 = and i64 %22, %19
  call void @__quantum__qis__reset__body(ptr null)
  call void @__quantum__qis__reset__body(ptr inttoptr (i64 1 to ptr))
  call void @__quantum__qis__phasedx__body(double 0x3F97F7D4B1DCC83C, double 0x3FF921FB54442D18, ptr null)
  call void @__quantum__qis__phasedx__body(double 0x3F95B3DE5480DD86, double 0x3FF921FB54442D18, ptr inttoptr (i64 1 to ptr))
  %24 = icmp eq i64 1, %23
  br i1 %24, label %condb0, label %contb0

condb0:                                           ; preds = %entry
  call void @__quantum__qis__phasedx__body(double 0x3F80DBD5FB5E2000, double 0x3FF921FB54442D18, ptr null)
  br label %contb0

contb0:                                           ; preds = %condb0, %entry
  %25 = icmp eq i64 0, %23
  br i1 %25, label %condb1, label %contb1

condb1:                                           ; preds = %contb0
  call void @__quantum__qis__phasedx__body(double 0x4008286406282692, double 0x3FF921FB54442D18, ptr inttoptr (i64 1 to ptr))
  br label %contb1

contb1:                                           ; preds = %condb1, %contb0
  %26 = icmp eq i64 2, %23
  br i1 %26, label %condb2, label %contb2

condb2:                                           ; preds = %contb1
  call void @__quantum__qis__phasedx__body(double 0x3FFCB24D8CCDBD88, double 0x3FF921FB54442D18, ptr null)
  br label %contb2

contb2:                                           ; preds = %condb2, %contb1
  %27 = icmp eq i64 1, %23
  br i1 %27, label %condb3, label %contb3

condb3:                                           ; preds = %contb2
  call void @__quantum__qis__phasedx__body(double 0x3FF1EF4E1483CF98, double 0x3FF921FB54442D18, ptr inttoptr (i64 1 to ptr))
  br label %contb3

contb3:                                           ; preds = %condb3, %contb2
  %28 = icmp eq i64 3, %23
  br i1 %28, label %condb4, label %contb4

condb4:                                           ; preds = %contb3
  call void @__quantum__qis__phasedx__body(double 0x4000278EDF9CF70A, double 0x3FF921FB54442D18, ptr null)
  br label %contb4

contb4:                                           ; preds = %condb4, %contb3
  %29 = icmp eq i64 2, %23
  br i1 %29, label %condb5, label %contb5

condb5:                                           ; preds = %contb4
  call void @__quantum__qis__phasedx__body(double 0x4008D00CD77971D4, double 0x3FF921FB54442D18, ptr inttoptr (i64 1 to ptr))
  br label %contb5

contb5:                                           ; preds = %condb5, %contb4
  %30 = icmp eq i64 4, %23
  br i1 %30, label %condb6, label %contb6

condb6:                                           ; preds = %contb5
  call void @__quantum__qis__phasedx__body(double 0x3FC5940BBD61B2C0, double 0x3FF921FB54442D18, ptr null)
  br label %contb6

contb6:                                           ; preds = %condb6, %contb5
  %31 = icmp eq i64 3, %23
  br i1 %31, label %condb7, label %contb7

condb7:                                           ; preds = %contb6
  call void @__quantum__qis__phasedx__body(double 0x4002E436475AA76E, double 0x3FF921FB54442D18, ptr inttoptr (i64 1 to ptr))
  br label %contb7

contb7:                                           ; preds = %condb7, %contb6
  %32 = icmp eq i64 5, %23
  br i1 %32, label %condb8, label %contb8

condb8:                                           ; preds = %contb7
  call void @__quantum__qis__phasedx__body(double 0x3FCD99E0A0D93770, double 0x3FF921FB54442D18, ptr null)
  br label %contb8

contb8:                                           ; preds = %condb8, %contb7
  %33 = icmp eq i64 4, %23
  br i1 %33, label %condb9, label %contb9

condb9:                                           ; preds = %contb8
  call void @__quantum__qis__phasedx__body(double 0x3FE9E312558643B3, double 0x3FF921FB54442D18, ptr inttoptr (i64 1 to ptr))
  br label %contb9

contb9:                                           ; preds = %condb9, %contb8
  %34 = icmp eq i64 6, %23
  br i1 %34, label %condb10, label %contb10

condb10:                                          ; preds = %contb9
  call void @__quantum__qis__phasedx__body(double 0x4006FF0A1E9455AC, double 0x3FF921FB54442D18, ptr null)
  br label %contb10

contb10:                                          ; preds = %condb10, %contb9
  %35 = icmp eq i64 6, %23
  br i1 %35, label %condb11, label %contb11

condb11:                                          ; preds = %contb10
  call void @__quantum__qis__phasedx__body(double 0x40008313D387361A, double 0x3FF921FB54442D18, ptr inttoptr (i64 1 to ptr))
  br label %contb11

contb11:                                          ; preds = %condb11, %contb10
  %36 = icmp eq i64 7, %23
  br i1 %36, label %condb12, label %contb12

condb12:                                          ; preds = %contb11
  call void @__quantum__qis__phasedx__body(double 0x40077A35179D0A2A, double 0x3FF921FB54442D18, ptr null)
  br label %contb12

contb12:                                          ; preds = %condb12, %contb11
  %37 = icmp eq i64 7, %23
  br i1 %37, label %condb13, label %contb13

condb13:                                          ; preds = %contb12
  call void @__quantum__qis__phasedx__body(double 0x3FB783ECC6711CE0, double 0x3FF921FB54442D18, ptr inttoptr (i64 1 to ptr))
  br label %contb13

contb13:                                          ; preds = %condb13, %contb12
  call void @__quantum__qis__mz__body(ptr null, ptr null)
  %38 = call i1 @__quantum__qis__read_result__body(ptr null)
  %39 = zext i1 %38 to i64
  %40 = mul i64 %39, 1
  %41 = or i64 %40, 0
  %42 = sub i64 1, %39
  %43 = mul i64 %42, 1
  %44 = xor i64 9223372036854775807, %43
  %45 = and i64 %44, %41
  call void @__quantum__qis__mz__body(ptr inttoptr (i64 1 to ptr), ptr inttoptr (i64 1 to ptr))
  %46 = call i1 @__quantum__qis__read_result__body(ptr inttoptr (i64 1 to ptr))
  %47 = zext i1 %46 to i64
  %48 = mul i64 %47, 2
  %49 = or i64 %48, %45
  %50 = sub i64 1, %47
  %51 = mul i64 %50, 2
  %52 = xor i64 9223372036854775807, %51
  %53 = and i64 %52, %49
  call void @__quantum__rt__int_record_output(i64 %23, ptr @0)
  call void @__quantum__rt__int_record_output(i64 %53, ptr @1)
  ret void
}

declare i1 @__quantum__qis__read_result__body(ptr)

declare void @__quantum__rt__int_record_output(i64, ptr)

declare void @__quantum__qis__phasedx__body(double, double, ptr)

declare void @__quantum__qis__mz__body(ptr, ptr writeonly) #1

declare void @__quantum__qis__reset__body(ptr)

attributes #0 = { "entry_point" "output_labeling_schema" "qir_profiles"="custom" "required_num_qubits"="3" "required_num_results"="3" }
attributes #1 = { "irreversible" }

!llvm.module.flags = !{!0, !1, !2, !3}

!0 = !{i32 1, !"qir_major_version", i32 2}
!1 = !{i32 7, !"qir_minor_version", i32 0}
!2 = !{i32 1, !"dynamic_qubit_management", i1 false}
!3 = !{i32 1, !"dynamic_result_management", i1 false}
