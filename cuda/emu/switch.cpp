// The fiber switch of emu.h, linked once into each emulated kernel library (tests/cuda_emu.py).
#include "emu/emu.h"

#if defined(__x86_64__)
// emu.h's context switch (System V x86-64): push the callee-saved registers and the control
// words, swap stack pointers, pop the other context's and return into it.
asm(R"(
    .text
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");
#endif
