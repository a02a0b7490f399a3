import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { CheckboxGroup, ticked } from './field';

const KINDS = ['container', 'pod', 'job'] as const;

describe('CheckboxGroup', () => {
  it('ticks in the options order, unticks, and drops what is no option', () => {
    expect(ticked(KINDS, [], 'job', true)).toEqual(['job']);
    expect(ticked(KINDS, ['job'], 'container', true)).toEqual(['container', 'job']);
    expect(ticked(KINDS, ['container', 'job'], 'container', false)).toEqual(['job']);
    expect(ticked(KINDS, ['pod', 'vm' as never], 'job', true)).toEqual(['pod', 'job']);
  });

  it('is a named group of boxes, those selected ticked, with the error after them', () => {
    const html = renderToStaticMarkup(
      <CheckboxGroup label="Kinds" options={KINDS} selected={['pod']} onToggle={() => undefined} error="pick one" />,
    );
    expect(html).toContain('role="group" aria-label="Kinds"');
    expect(html.match(/<input type="checkbox"[^>]*>/g)).toEqual([
      '<input type="checkbox" data-option="container"/>',
      '<input type="checkbox" data-option="pod" checked=""/>',
      '<input type="checkbox" data-option="job"/>',
    ]);
    expect(html).toContain('<span class="fw-field__error" role="alert">pick one</span>');
  });
});
