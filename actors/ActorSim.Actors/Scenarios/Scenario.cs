using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;

namespace ActorSim.Actors.Scenarios;

/// <summary>A scenario file that is not valid: where (file, line, field) and why.</summary>
/// <remarks>Line 0 is the file as a whole (missing, a directory, too large): said as the commands that
/// read an event log say it, "FILE: no such file".</remarks>
public sealed class ScenarioFormatException(string file, int line, string field, string message)
    : Exception(line > 0 ? $"{file}:{line}: {field}: {message}" : $"{file}: {message}")
{
    public string File { get; } = file;
    public int Line { get; } = line;
    public string Field { get; } = field;
}

/// <summary>A parsed scenario (shared/docs/scenario-format.md).</summary>
/// <param name="CpuMte"><c>cpu.mte</c>: the host CPU has MTE (<see cref="SimHostOptions.SystemSupportsMte"/>).</param>
public sealed record Scenario(string File, string Name, KernelPolicy Policy, ulong? Seed,
    IReadOnlyList<DeviceSpec> Devices, IReadOnlyList<VmSpec> Vms, IReadOnlyList<Step> Steps, bool CpuMte = false);

public sealed record DeviceSpec(string Name, VfioDriver Driver, IReadOnlyList<RegionSpec> Regions, int Line);
/// <param name="IpaBits">The VM's IPA size (<c>ipa-bits</c>; KVM_PHYS_SHIFT, 40, by default).</param>
/// <param name="Mte"><c>mte: true</c>: the VMM enabled KVM_CAP_ARM_MTE.</param>
/// <param name="NisvToUser"><c>nisv-to-user: true</c>: the VMM enabled KVM_CAP_ARM_NISV_TO_USER.</param>
public sealed record VmSpec(string Name, ulong RamGpa, ulong RamSize, bool HasRam, int Line, int IpaBits = KvmVm.DefaultIpaBits, bool Mte = false,
    bool NisvToUser = false)
{
    public KvmVm Create() => KvmVm.Create(Name, Mte, IpaBits, NisvToUser);
}

/// <summary>One step; <paramref name="Number"/> counts from 1 in file order.</summary>
public abstract record Step(int Number, int Line);
public sealed record MmapStep(int Number, int Line, string Name, string Device, int Region, ulong Offset, ulong Size, bool Shared, Prot Prot, ulong? Hva) : Step(Number, Line);
public sealed record MemslotStep(int Number, int Line, string Vm, int Slot, ulong Gpa, ulong Size, string Backing, MemslotFlags Flags) : Step(Number, Line);
/// <param name="Syndrome">The abort's syndrome bits beside the op: <c>nisv: true</c> (a load or store
/// without a valid syndrome), <c>s1ptw: true</c> (the access's stage-1 walk), <c>cm: true</c> (cache
/// maintenance, no valid syndrome either); FaultInputs.Nisv, S1ptw, Cm.</param>
public sealed record AccessStep(int Number, int Line, string Vm, int Vcpu, ulong Gpa, AccessOp Op, MemType S1, bool Retry,
    AbortSyndrome Syndrome = AbortSyndrome.None) : Step(Number, Line)
{
    public bool Nisv => Syndrome.HasFlag(AbortSyndrome.Nisv);
}
public sealed record DeviceStep(int Number, int Line, string Device, bool? Memory, bool Reset, PciPowerState? Power) : Step(Number, Line);
public sealed record MunmapStep(int Number, int Line, string Name, ulong? Offset, ulong? Size) : Step(Number, Line);
public sealed record MprotectStep(int Number, int Line, string Name, Prot Prot, ulong? Offset, ulong? Size) : Step(Number, Line);
public sealed record DeleteMemslotStep(int Number, int Line, string Vm, int Slot) : Step(Number, Line);
/// <summary>An in-kernel vgic-v2 whose CPU interface (GICC) the VMM put at <paramref name="CpuBase"/>
/// (KVM_VGIC_V2_ADDR_TYPE_CPU), mapped by KVM at the first KVM_RUN (KvmVmDecider.VgicV2MapResources).</summary>
public sealed record VgicV2Step(int Number, int Line, string Vm, ulong CpuBase) : Step(Number, Line);

/// <summary>An expectation; <c>Errno.None</c> in an errno field means "result: ok".</summary>
public abstract record Expect(int Number, int Line) : Step(Number, Line);
public sealed record ExpectMmap(int Number, int Line, string Name, Errno Errno) : Expect(Number, Line);
public sealed record ExpectMemslot(int Number, int Line, string Vm, int Slot, Errno Errno) : Expect(Number, Line);
public sealed record ExpectVma(int Number, int Line, string Name, VmFlags Flags, VmFlags NotFlags, string? Smaps) : Expect(Number, Line);
public sealed record ExpectAccess(int Number, int Line, FaultResult Result, Errno? Errno) : Expect(Number, Line);
/// <param name="S2">null: "unmapped".</param>
public sealed record ExpectStage2(int Number, int Line, string Vm, ulong Gpa, MemType? S2, byte? MemAttr, bool? Xn, bool? Writable, MemType? Effective) : Expect(Number, Line);
public sealed record ExpectInvariants(int Number, int Line) : Expect(Number, Line);
/// <summary>Added key: the errno of the step just before (device, munmap, mprotect, delete-memslot).</summary>
public sealed record ExpectLastStep(int Number, int Line, Errno Errno) : Expect(Number, Line);
