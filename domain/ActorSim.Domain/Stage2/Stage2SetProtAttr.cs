using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Stage2;

/// <summary>The attribute half of a stage-2 leaf that <c>stage2_set_prot_attr</c> computes.</summary>
public readonly record struct Stage2Attr(S2Type Type, byte MemAttr, bool Read, bool Write, bool XN, ulong SwBits);

/// <summary><c>stage2_set_prot_attr(pgt, prot, &amp;ptep)</c> (arch/arm64/kvm/hyp/pgtable.c; kernel-model.md §4.2).</summary>
public static class Stage2SetProtAttr
{
    private const KvmPgtableProt X = KvmPgtableProt.KVM_PGTABLE_PROT_X;
    private const KvmPgtableProt Device = KvmPgtableProt.KVM_PGTABLE_PROT_DEVICE;
    private const KvmPgtableProt NormalNc = KvmPgtableProt.KVM_PGTABLE_PROT_NORMAL_NC;
    private const ulong SwMask = 0xFUL << 55;

    public static Errno Compute(KvmPgtableProt prot, RuleSet ruleSet, bool fwb, out Stage2Attr attr)
    {
        attr = default;
        S2Type type;
        if (ruleSet == RuleSet.V6_8)
        {
            // v6.1..v6.8: attr = DEVICE ? DEVICE_nGnRE : NORMAL; X on device -> -EINVAL. There is no
            // NORMAL_NC bit in these kernels, so bit 4 is ignored.
            var device = (prot & Device) != 0;
            if (device && (prot & X) != 0) return Errno.EINVAL;
            type = device ? S2Type.Device : S2Type.Normal;
        }
        else
        {
            // v6.9+ (c034ec84e879): switch on prot & (DEVICE | NORMAL_NC).
            switch (prot & (Device | NormalNc))
            {
                case Device | NormalNc:
                    return Errno.EINVAL;
                case Device:
                    if ((prot & X) != 0) return Errno.EINVAL;
                    type = S2Type.Device;
                    break;
                case NormalNc:
                    if ((prot & X) != 0) return Errno.EINVAL;
                    type = S2Type.NormalNC;
                    break;
                default:
                    type = S2Type.Normal;
                    break;
            }
        }
        attr = new Stage2Attr(
            type,
            MemAttr.Code(type, fwb),
            Read: (prot & KvmPgtableProt.KVM_PGTABLE_PROT_R) != 0,
            Write: (prot & KvmPgtableProt.KVM_PGTABLE_PROT_W) != 0,
            XN: (prot & X) == 0,
            SwBits: (ulong)prot & SwMask);
        return Errno.None;
    }
}
