extension Image {
    /// DINO's attention maps: how much the class token attends to each patch, one picture per
    /// head, from the attention probabilities of a block (`[batch, heads, 1 + patches,
    /// 1 + patches]`, e.g. an ``ActivationRecorder``'s `blocks.{last}/attn_probs` recorded
    /// during a forward pass of a backbone with a class token).
    ///
    /// Each head's row is min-max scaled to the viridis colour map and every patch drawn as a
    /// `scale × scale` block (the patch size gives the input's resolution).
    public static func classTokenAttention(
        probabilities: Tensor, sample: Int, gridHeight: Int, gridWidth: Int, scale: Int
    ) -> [Image] {
        let patches = gridHeight * gridWidth
        precondition(
            probabilities.rank == 4 && probabilities.shape[2] == patches + 1 && probabilities.shape[3] == patches + 1,
            "classTokenAttention: probabilities \(probabilities.describe) must be [batch, heads, \(patches + 1), \(patches + 1)].")
        precondition(sample >= 0 && sample < probabilities.shape[0], "classTokenAttention: no sample \(sample).")
        let heads = probabilities.shape[1], tokens = patches + 1
        return probabilities.withElements { values in
            (0..<heads).map { head in
                let row = ((sample * heads + head) * tokens) * tokens
                let attention = Array(values[(row + 1)..<(row + tokens)])
                return heatMap(attention, gridHeight: gridHeight, gridWidth: gridWidth, scale: scale)
            }
        }
    }
}
