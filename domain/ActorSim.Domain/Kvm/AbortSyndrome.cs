namespace ActorSim.Domain.Kvm;

/// <summary>The bits of a stage-2 abort's syndrome (ESR_EL2.ISS) that KVM reads beside the access
/// itself (<see cref="AccessOp"/>: a load, a store, an instruction fetch). Carried with a guest access
/// from the vCPU to the decision, where they become <see cref="FaultInputs.Nisv"/>,
/// <see cref="FaultInputs.S1ptw"/> and <see cref="FaultInputs.Cm"/>.</summary>
[Flags]
public enum AbortSyndrome : byte
{
    None = 0,
    /// <summary>ESR_ELx_ISV clear: no valid instruction syndrome (<see cref="FaultInputs.Nisv"/>).</summary>
    Nisv = 1,
    /// <summary>ESR_ELx_S1PTW: the abort came from the stage-1 page-table walk for the access
    /// (<see cref="FaultInputs.S1ptw"/>).</summary>
    S1ptw = 2,
    /// <summary>ESR_ELx_CM: a cache maintenance instruction (<see cref="FaultInputs.Cm"/>).</summary>
    Cm = 4,
}

/// <summary>What KVM derives from the syndrome (arch/arm64/include/asm/kvm_emulate.h, v6.12).</summary>
public static class KvmEmulate
{
    /// <summary>kvm_is_write_fault(): a stage-1 walk's abort is a write only when it is a permission
    /// fault (the walker updating AF/DBM; a translation fault is a read, so page tables in a read-only
    /// memslot can be mapped: 406504c7b040 "KVM: arm64: Fix S1PTW handling on RO memslots"); an
    /// instruction abort is never one; else ESR_ELx_WNR, which the architecture sets for a cache
    /// maintenance instruction whatever it does (ESR_ELx.WnR: "1 for faults on cache maintenance and
    /// address translation instructions").</summary>
    public static bool IsWriteFault(AccessOp op, bool s1ptw, bool cm, bool faultIsPerm) =>
        s1ptw ? faultIsPerm : op != AccessOp.Exec && (op == AccessOp.Write || cm);

    /// <summary>kvm_vcpu_trap_is_exec_fault(): an instruction abort not taken on its stage-1 walk.</summary>
    public static bool IsExecFault(AccessOp op, bool s1ptw) => op == AccessOp.Exec && !s1ptw;

    /// <summary>The stage-2 permission the access needs, so whether a leaf lets it through: a stage-1
    /// walk reads the page tables (<see cref="AccessOp.Read"/>, also for an instruction fetch's walk)
    /// or, with op <see cref="AccessOp.Write"/>, writes them for a hardware AF/DBM update; any other
    /// access needs what its op says (a clean by VA reads, an invalidate writes).</summary>
    public static AccessOp Needs(AccessOp op, bool s1ptw) => s1ptw && op == AccessOp.Exec ? AccessOp.Read : op;

    public static bool IsWriteFault(FaultInputs i) => IsWriteFault(i.Op, i.S1ptw, i.Cm, i.FaultIsPerm);
    public static bool IsExecFault(FaultInputs i) => IsExecFault(i.Op, i.S1ptw);
    public static AccessOp Needs(FaultInputs i) => Needs(i.Op, i.S1ptw);

    /// <summary>The syndrome as the record holds it.</summary>
    public static AbortSyndrome Syndrome(FaultInputs i) => Syndrome(i.Nisv, i.S1ptw, i.Cm);

    public static AbortSyndrome Syndrome(bool nisv, bool s1ptw, bool cm) =>
        (nisv ? AbortSyndrome.Nisv : 0) | (s1ptw ? AbortSyndrome.S1ptw : 0) | (cm ? AbortSyndrome.Cm : 0);
}
