import React from 'react';

interface Props {
  id: string;
  color: string;
}

/** SVG hatch laid over cells whose month is not over yet: their value will still move. */
export function MaturingPattern({ id, color }: Props) {
  return (
    <defs>
      <pattern id={id} width={6} height={6} patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
        <line x1={0} y1={0} x2={0} y2={6} stroke={color} strokeWidth={2} strokeOpacity={0.45} />
      </pattern>
    </defs>
  );
}
