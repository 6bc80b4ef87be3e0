using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Stage2;

/// <summary>Effective memory type of a guest access: the guest's stage-1 type combined with the
/// stage-2 MemAttr, following the Arm ARM (S2CombineS1MemAttrs / AArch64.S2ApplyFWBMemAttrs;
/// kernel-model.md §5). Where QEMU's combine_cacheattrs differs, this follows the architecture.</summary>
public static class CombineStages
{
    /// <summary>Returns false for a reserved encoding (FWB 0b100).</summary>
    public static bool TryCombine(MemType s1, byte s2MemAttr, bool fwb, out MemType effective)
    {
        if (!fwb)
        {
            // Non-FWB: both stages' types, the more restrictive wins: Device beats Normal, the lower
            // Device type wins, and among Normal types NC < WT < WB.
            effective = Min(s1, DecodeNonFwb(s2MemAttr));
            return true;
        }
        // FWB: MemAttr[3] is RES0 without FEAT_MTE_PERM; MemAttr[2:0] decides.
        switch (s2MemAttr & 0b111)
        {
            case var c when (c & 0b100) == 0:
                var s2dev = (MemType)(c & 0b11);   // Device type in MemAttr[1:0]
                effective = s1.IsDevice() ? Min(s1, s2dev) : s2dev;
                return true;
            case 0b110:
                effective = MemType.NormalWB;      // "Force writeback", whatever stage 1 says
                return true;
            case 0b111:
                effective = s1;                    // stage-1 attributes unchanged
                return true;
            case 0b101:
                effective = s1.IsDevice() ? s1 : MemType.NormalNC;
                return true;
            default:
                effective = default;               // 0b100: reserved
                return false;
        }
    }

    public static MemType Combine(MemType s1, byte s2MemAttr, bool fwb) =>
        TryCombine(s1, s2MemAttr, fwb, out var e) ? e
            : throw new ArgumentException($"reserved stage-2 MemAttr 0x{s2MemAttr:x} with FWB", nameof(s2MemAttr));

    private static MemType Min(MemType a, MemType b) => a < b ? a : b;

    /// <summary>Non-FWB MemAttr[3:0]: [3:2]=00 → Device of type [1:0]; else outer [3:2], inner [1:0]
    /// each 01 NC, 10 WT, 11 WB; the least cacheable of the two (KVM writes symmetric codes).</summary>
    public static MemType DecodeNonFwb(byte code)
    {
        var outer = (code >> 2) & 0b11;
        var inner = code & 0b11;
        if (outer == 0) return (MemType)inner;
        static MemType Cache(int v) => v switch { 1 => MemType.NormalNC, 2 => MemType.NormalWT, 3 => MemType.NormalWB, _ => MemType.NormalNC };
        // inner 00 with a Normal outer is UNPREDICTABLE; treat as non-cacheable.
        return Min(Cache(outer), Cache(inner));
    }
}
