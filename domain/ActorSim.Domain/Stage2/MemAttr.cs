using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Stage2;

/// <summary>Stage-2 memory types KVM produces, and their MemAttr[3:0] codes
/// (MT_S2_* / MT_S2_FWB_* in arch/arm64/include/asm/memory.h; kernel-model.md §4.3).</summary>
public enum S2Type : byte { Normal, NormalNC, Device }

public static class MemAttr
{
    public const byte MT_S2_NORMAL = 0xF;
    public const byte MT_S2_NORMAL_NC = 0x5;
    public const byte MT_S2_DEVICE_nGnRE = 0x1;
    public const byte MT_S2_FWB_NORMAL = 6;
    public const byte MT_S2_FWB_NORMAL_NC = 5;
    public const byte MT_S2_FWB_DEVICE_nGnRE = 1;

    /// <summary>KVM_S2_MEMATTR(pgt, T): the FWB code if the stage-2 uses FWB, else the non-FWB one.</summary>
    public static byte Code(S2Type type, bool fwb) => (type, fwb) switch
    {
        (S2Type.Normal, false) => MT_S2_NORMAL,
        (S2Type.Normal, true) => MT_S2_FWB_NORMAL,
        (S2Type.NormalNC, false) => MT_S2_NORMAL_NC,
        (S2Type.NormalNC, true) => MT_S2_FWB_NORMAL_NC,
        (S2Type.Device, _) => MT_S2_DEVICE_nGnRE,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>The stage-2 type a KVM-produced code stands for, or null for a code KVM never writes.</summary>
    public static S2Type? TypeOf(byte code, bool fwb) => (code, fwb) switch
    {
        (MT_S2_NORMAL, false) => S2Type.Normal,
        (MT_S2_FWB_NORMAL, true) => S2Type.Normal,
        (MT_S2_NORMAL_NC, _) => S2Type.NormalNC,
        (MT_S2_DEVICE_nGnRE, _) => S2Type.Device,
        _ => null,
    };

    /// <summary>Name of the stage-2 type as a memory type (the S2 column of a scenario expectation).</summary>
    public static MemType MemTypeOf(S2Type t) => t switch
    {
        S2Type.Normal => MemType.NormalWB,
        S2Type.NormalNC => MemType.NormalNC,
        _ => MemType.DeviceNGnRE,
    };
}
